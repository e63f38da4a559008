"""consumers/probes.py: a worker process's /healthz, /readyz and /metrics, from the state
of its task and of its group membership."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CONTENT_TYPE_LATEST

from amplify_stream.metrics import Metrics
from consumers.probes import probe_app, serving_probes
from tests.support import free_port


class StubWorker:
    def __init__(self) -> None:
        self.metrics = Metrics()
        self.member = True

    def in_group(self) -> bool:
        return self.member


@contextlib.asynccontextmanager
async def client(worker: StubWorker, task: asyncio.Task[Any]) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(probe_app(worker, task))) as c:
        yield c


async def answer(c: TestClient, path: str) -> tuple[int, Any]:
    res = await c.get(path)
    return res.status, await res.json()


async def forever() -> None:
    await asyncio.Event().wait()


async def crash() -> None:
    raise RuntimeError("boom")


@pytest.fixture
async def running() -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(forever())
    yield task
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_a_running_worker_in_its_group_is_alive_and_ready(
    running: asyncio.Task[None],
) -> None:
    async with client(StubWorker(), running) as c:
        assert await answer(c, "/healthz") == (200, {"status": "ok"})
        assert await answer(c, "/readyz") == (200, {"status": "ok", "checks": {"group": "ok"}})


async def test_a_worker_out_of_its_group_is_alive_not_ready(running: asyncio.Task[None]) -> None:
    worker = StubWorker()
    worker.member = False
    async with client(worker, running) as c:
        assert await answer(c, "/healthz") == (200, {"status": "ok"})
        assert await answer(c, "/readyz") == (
            503,
            {"status": "unavailable", "checks": {"group": "down: not in group"}},
        )


async def test_a_crashed_worker_is_neither_alive_nor_ready() -> None:
    task = asyncio.create_task(crash())
    await asyncio.wait({task})
    async with client(StubWorker(), task) as c:  # its lease not ended yet: still fails
        down = {"status": "unavailable", "checks": {"worker": "down: worker crashed: RuntimeError"}}
        assert await answer(c, "/healthz") == (503, down)
        status, body = await answer(c, "/readyz")
        assert (status, body["checks"]) == (503, {"group": "down: worker crashed: RuntimeError"})
    assert isinstance(task.exception(), RuntimeError)


async def test_a_stopped_worker_is_not_alive() -> None:
    task = asyncio.create_task(forever())
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.wait({task})
    async with client(StubWorker(), task) as c:
        assert await answer(c, "/healthz") == (
            503,
            {"status": "unavailable", "checks": {"worker": "down: worker stopped"}},
        )


async def test_metrics_are_the_workers_registry(running: asyncio.Task[None]) -> None:
    worker = StubWorker()
    worker.metrics.consumer_lag.labels("g", "t", "0").set(7)
    async with client(worker, running) as c:
        res = await c.get("/metrics")
        assert res.status == 200
        assert res.headers["Content-Type"] == CONTENT_TYPE_LATEST
        text = await res.text()
        assert 'amplify_consumer_lag{group="g",partition="0",topic="t"} 7.0' in text


async def test_the_server_answers_until_its_block_exits(running: asyncio.Task[None]) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/healthz"
    async with aiohttp.ClientSession() as session:
        async with (
            serving_probes(StubWorker(), running, host="127.0.0.1", port=port),
            session.get(url) as res,
        ):
            assert res.status == 200
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.get(url):
                pass
