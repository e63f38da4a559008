"""Liveness and readiness."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from amplify_stream.gateway import keys
from amplify_stream.gateway.http import json_response
from amplify_stream.gateway.openapi import Operation, Reply, describe
from amplify_stream.gateway.schemas import Health, Readiness

routes = web.RouteTableDef()

CHECK_TIMEOUT_S = 2.0


@routes.get("/healthz")
@describe(
    Operation(
        summary="Liveness: the process runs",
        tag="health",
        replies={200: Reply("The process runs.", Health)},
    )
)
async def healthz(request: web.Request) -> web.Response:
    return json_response(Health().to_json())


@routes.get("/readyz")
@describe(
    Operation(
        summary="Readiness: the bus and the store answer",
        tag="health",
        replies={
            200: Reply("Ready.", Readiness),
            503: Reply("A dependency does not answer; the checks say which.", Readiness),
        },
    )
)
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
    checks["speech_provider"] = app[keys.SETTINGS].speech_provider
    # The one-process service (amplify_stream/service.py) adds what its workers know, such
    # as the speech provider the narrator chose; informative, like the providers above.
    worker_checks = app.get(keys.WORKER_CHECKS, {})
    checks.update(worker_checks)
    # Ready means the same however the gateway runs: its own bus and store answer.
    ready = all(v == "ok" for k, v in results)
    body = Readiness(status="ready" if ready else "unavailable", checks=checks)
    return json_response(body.to_json(), 200 if ready else 503)


@routes.get("/metrics")
@describe(
    Operation(
        summary="Prometheus metrics",
        tag="health",
        replies={200: Reply("The Prometheus text exposition format.", media="text/plain")},
    )
)
async def metrics(request: web.Request) -> web.Response:
    body = request.app[keys.METRICS].exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
