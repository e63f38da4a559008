"""Accounts: register, sign in for a token, and who am I."""

from __future__ import annotations

from aiohttp import web

from amplify_stream.auth.models import Credentials, TokenResponse, UserOut
from amplify_stream.errors import AmplifyError, Unauthorized
from amplify_stream.gateway import keys
from amplify_stream.gateway.authn import authenticate
from amplify_stream.gateway.http import json_response, parse, read_json

routes = web.RouteTableDef()


class InvalidAccount(AmplifyError):
    code, http_status = "invalid_account", 422


@routes.post("/v1/auth/register")
async def register(request: web.Request) -> web.Response:
    creds = parse(Credentials, await read_json(request), InvalidAccount)
    password_hash = await request.app[keys.PASSWORDS].hash(creds.password)
    user = await request.app[keys.USERS].create(creds.username, password_hash)
    return json_response(UserOut(id=user.id, username=user.username).model_dump(), 201)


@routes.post("/v1/auth/token")
async def token(request: web.Request) -> web.Response:
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        data: object = dict(await request.post())
    else:
        data = await read_json(request)
    creds = parse(Credentials, data, Unauthorized)
    user = await request.app[keys.USERS].by_username(creds.username)
    # Verified against a dummy hash when the user is unknown: the same cost either way.
    ok = await request.app[keys.PASSWORDS].verify(
        creds.password, user.password_hash if user else None
    )
    if user is None or not ok:
        raise Unauthorized("wrong username or password")
    access_token, expires_in = request.app[keys.TOKENS].issue(user.id, user.username)
    body = TokenResponse(access_token=access_token, expires_in=expires_in)
    return json_response(body.model_dump())


@routes.get("/v1/auth/me")
async def me(request: web.Request) -> web.Response:
    claims = authenticate(request)
    user = await request.app[keys.USERS].by_id(claims.user_id)
    if user is None:
        raise Unauthorized("the account no longer exists")
    return json_response(UserOut(id=user.id, username=user.username).model_dump())
