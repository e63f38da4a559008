"""The HTTP server of a worker process, on its metrics port (``AMPLIFY_METRICS_PORT``).

GET /metrics  the worker's Prometheus metrics
GET /healthz  liveness: 200 while the worker's task runs, 503 once it ended or crashed
GET /readyz   readiness: 200 while the worker is surely a member of its consumer group
              (``Worker.in_group``: its lease holds), else 503

No authentication, on purpose: the metrics port is the operators', kept inside the
deployment's network (never published), as Prometheus and the container runtime reach it.
The bodies have the shapes of the gateway's ``/healthz`` and ``/readyz``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from amplify_stream.metrics import Metrics


class Probed(Protocol):
    """What the probes read of a worker."""

    metrics: Metrics

    def in_group(self) -> bool: ...


WORKER: web.AppKey[Probed] = web.AppKey("worker")
TASK: web.AppKey[asyncio.Task[Any]] = web.AppKey("task")

# Workers stop within their shutdown grace; the probes' own handlers never wait on anything.
SHUTDOWN_TIMEOUT_S = 1.0


def _ended(task: asyncio.Task[Any]) -> str:
    if task.cancelled():
        return "down: worker stopped"
    exc = task.exception()
    return f"down: worker crashed: {type(exc).__name__}" if exc else "down: worker stopped"


async def healthz(request: web.Request) -> web.Response:
    task = request.app[TASK]
    if task.done():
        body = {"status": "unavailable", "checks": {"worker": _ended(task)}}
        return web.json_response(body, status=503)
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    task = request.app[TASK]
    if task.done():
        group = _ended(task)
    elif request.app[WORKER].in_group():
        group = "ok"
    else:
        # Not joined yet, or its lease ran out (frozen, cut off from the broker): its
        # partitions may be another member's by now.
        group = "down: not in group"
    ready = group == "ok"
    body = {"status": "ok" if ready else "unavailable", "checks": {"group": group}}
    return web.json_response(body, status=200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    body = request.app[WORKER].metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def probe_app(worker: Probed, task: asyncio.Task[Any]) -> web.Application:
    app = web.Application()
    app[WORKER] = worker
    app[TASK] = task
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


@contextlib.asynccontextmanager
async def serving_probes(
    worker: Probed, task: asyncio.Task[Any], *, host: str, port: int
) -> AsyncIterator[None]:
    """The probe server on ``host:port``, in the running loop, until the block exits."""
    # No access log: the probes are asked every few seconds, for as long as it runs.
    runner = web.AppRunner(
        probe_app(worker, task), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        yield
    finally:
        await runner.cleanup()
