"""Accounts: register, sign in for a token, and who am I.

Every request to register or sign in counts against the client's address, before its
body is read; a sign-in also counts against the username before the password is
checked (see ``limits.py``). The address is the peer of the connection: behind a
reverse proxy, every client shares the proxy's.
"""

from __future__ import annotations

import logging

from aiohttp import web
from pydantic import SecretStr

from amplify_stream.auth.models import Credentials, TokenResponse, UserOut
from amplify_stream.errors import AmplifyError, InvalidMessage, Unauthorized
from amplify_stream.gateway import keys
from amplify_stream.gateway.authn import authenticate
from amplify_stream.gateway.http import json_response, parse, read_json
from amplify_stream.gateway.openapi import (
    FORM,
    JSON,
    RATE_LIMITED,
    UNAVAILABLE,
    Auth,
    Operation,
    Reply,
    describe,
    error,
)
from amplify_stream.store.errors import StoreUnavailable
from amplify_stream.store.records import UserRecord

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


class InvalidAccount(AmplifyError):
    code, http_status = "invalid_account", 422


@routes.post("/v1/auth/register")
@describe(
    Operation(
        summary="Create an account",
        tag="accounts",
        body=Credentials,
        replies={
            201: Reply("The account.", UserOut),
            409: error("The username is taken."),
            422: error("Not a valid username or password (``invalid_account``)."),
            429: RATE_LIMITED,
            503: UNAVAILABLE,
        },
    )
)
async def register(request: web.Request) -> web.Response:
    await request.app[keys.LIMITS].auth_attempt(request.remote)
    creds = parse(Credentials, await read_json(request), InvalidAccount)
    password_hash = await request.app[keys.PASSWORDS].hash(creds.password)
    user = await request.app[keys.USERS].create(creds.username, password_hash)
    return json_response(UserOut(id=user.id, username=user.username).model_dump(), 201)


@routes.post("/v1/auth/token")
@describe(
    Operation(
        summary="Sign in: an access token for a username and password",
        tag="accounts",
        body=Credentials,
        body_media=(JSON, FORM),
        replies={
            200: Reply("A bearer token for the other routes.", TokenResponse),
            401: error("Wrong username or password."),
            429: RATE_LIMITED,
            503: error(
                "This gateway checks tokens but holds no key to issue them, or the store "
                "does not answer (``unavailable``)."
            ),
        },
    )
)
async def token(request: web.Request) -> web.Response:
    limits = request.app[keys.LIMITS]
    await limits.auth_attempt(request.remote)
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            data: object = dict(await request.post())
        except (ValueError, LookupError) as exc:
            # A multipart body without its boundary, undecodable text, an unknown charset.
            raise InvalidMessage("the form body cannot be read") from exc
    else:
        data = await read_json(request)
    creds = parse(Credentials, data, Unauthorized)
    await limits.login_attempt(creds.username)
    user = await request.app[keys.USERS].by_username(creds.username)
    # Verified against a dummy hash when the user is unknown: the same cost either way.
    ok = await request.app[keys.PASSWORDS].verify(
        creds.password, user.password_hash if user else None
    )
    if user is None or not ok:
        raise Unauthorized("wrong username or password")
    await _rehash_if_stale(request, user, creds.password)
    access_token, expires_in = request.app[keys.TOKENS].issue(user.id, user.username)
    body = TokenResponse(access_token=access_token, expires_in=expires_in)
    return json_response(body.model_dump())


@routes.get("/v1/auth/me")
@describe(
    Operation(
        summary="The account of the access token",
        tag="accounts",
        auth=Auth.BEARER,
        replies={200: Reply("The account.", UserOut), 503: UNAVAILABLE},
    )
)
async def me(request: web.Request) -> web.Response:
    claims = authenticate(request)
    user = await request.app[keys.USERS].by_id(claims.user_id)
    if user is None:
        raise Unauthorized("the account no longer exists")
    return json_response(UserOut(id=user.id, username=user.username).model_dump())


async def _rehash_if_stale(request: web.Request, user: UserRecord, password: SecretStr) -> None:
    """A hash made at another cost (``AMPLIFY_BCRYPT_ROUNDS`` changed) is made again at
    today's, now that the password is known; a failure only leaves the old one in place."""
    passwords = request.app[keys.PASSWORDS]
    if not passwords.needs_rehash(user.password_hash):
        return
    try:
        fresh = await passwords.hash(password)
        await request.app[keys.USERS].replace_password_hash(user.id, user.password_hash, fresh)
    except (StoreUnavailable, ValueError) as exc:
        log.warning("password hash not renewed at the new cost: %s", type(exc).__name__)
