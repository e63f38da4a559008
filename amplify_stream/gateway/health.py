"""Liveness and readiness."""

from __future__ import annotations

import asyncio

from aiohttp import web

from amplify_stream.gateway import keys
from amplify_stream.gateway.http import json_response

routes = web.RouteTableDef()

CHECK_TIMEOUT_S = 2.0


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    app = request.app

    async def check(name: str, probe: asyncio.Future[None] | asyncio.Task[None]) -> tuple[str, str]:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                await probe
        except Exception as exc:
            return name, f"down: {type(exc).__name__}"
        return name, "ok"

    results = await asyncio.gather(
        check("bus", asyncio.ensure_future(app[keys.BUS].ping())),
        check("store", asyncio.ensure_future(app[keys.STORY_STORE].ping())),
    )
    checks = dict(results)
    checks["enhancer_provider"] = app[keys.SETTINGS].enhancement_provider_name
    checks["speech_provider"] = app.get(keys.SPEECH_PROVIDER, app[keys.SETTINGS].speech_provider)
    ready = all(v == "ok" for k, v in results)
    return json_response(
        {"status": "ready" if ready else "unavailable", "checks": checks}, 200 if ready else 503
    )
