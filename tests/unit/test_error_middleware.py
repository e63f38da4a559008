"""What a route's failure looks like to the client: the store being down is a retryable
503 ``unavailable`` (as the bus being down is), anything unexpected a 500 ``internal``
that tells nothing of its cause."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from amplify_stream.gateway.http import error_middleware
from amplify_stream.store.errors import StoreUnavailable


async def answer_of(error: Exception) -> tuple[int, dict[str, object]]:
    async def route(request: web.Request) -> web.Response:
        raise error

    app = web.Application(middlewares=[error_middleware])
    app.router.add_get("/", route)
    async with TestClient(TestServer(app)) as client:
        res = await client.get("/")
        return res.status, await res.json()


async def test_the_store_down_is_a_retryable_503() -> None:
    status, body = await answer_of(StoreUnavailable("the store does not answer (OSError)"))
    assert status == 503
    error = body["error"]
    assert isinstance(error, dict)
    assert error["code"] == "unavailable" and error["retryable"] is True
    assert error["message"] == "the store is unavailable; try again"


async def test_anything_else_is_a_500_that_tells_nothing() -> None:
    status, body = await answer_of(RuntimeError("postgresql://user:secret@db/x"))
    assert status == 500
    assert body == {"error": {"code": "internal", "message": "internal error"}}
