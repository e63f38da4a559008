"""Who is calling: the bearer token of a request, in the ways docs/protocol.md allows."""

from __future__ import annotations

from aiohttp import web

from amplify_stream.auth.tokens import Claims
from amplify_stream.errors import Unauthorized
from amplify_stream.gateway import keys

SUBPROTOCOL = "amplify.v1"
_BEARER_PROTOCOL = "bearer."
CLAIMS: web.RequestKey[Claims] = web.RequestKey("claims")


def _from_header(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _from_subprotocols(request: web.Request) -> str | None:
    offered = request.headers.get("Sec-WebSocket-Protocol", "")
    for proto in (p.strip() for p in offered.split(",")):
        if proto.startswith(_BEARER_PROTOCOL):
            return proto[len(_BEARER_PROTOCOL) :] or None
    return None


def token_of(request: web.Request, *, websocket: bool = False, query: bool = False) -> str | None:
    """The header first; for sockets the subprotocol list; for sockets and the GET
    routes a browser cannot put a header on (EventSource, <audio>), ``?access_token=``."""
    token = _from_header(request)
    if token is None and websocket:
        token = _from_subprotocols(request)
    if token is None and (websocket or query):
        token = request.query.get("access_token") or None
    return token


def authenticate(request: web.Request, *, websocket: bool = False, query: bool = False) -> Claims:
    token = token_of(request, websocket=websocket, query=query)
    if token is None:
        raise Unauthorized("a bearer token is required")
    claims = request.app[keys.TOKENS].verify(token)
    request[CLAIMS] = claims
    return claims
