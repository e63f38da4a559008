"""A worker process's probe server (``AMPLIFY_METRICS_PORT``), against the real broker:
/healthz, /readyz and /metrics while it runs; /readyz failing for real after a freeze
longer than its session (its lease lapsed) while /healthz holds, and recovering once it
rejoins; nothing answering once it stopped."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.conftest import Proc, base_env
from tests.support import free_port

Start = Callable[..., Awaitable[Proc]]

# The broker's default minimum: any test broker accepts it.
SESSION_TIMEOUT_S = 6
# Longer than the session: the lease lapsed, and the broker expelled the member.
FREEZE_S = SESSION_TIMEOUT_S + 2


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, str, str]:
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=30)) as res:
        return res.status, res.headers.get("Content-Type", ""), await res.text()


async def get_json(session: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=30)) as res:
        return res.status, await res.json()


async def until_ready(session: aiohttp.ClientSession, base: str, timeout: float) -> Any:
    """The body of /readyz once it answers 200."""
    async with asyncio.timeout(timeout):
        while True:
            status, body = await get_json(session, f"{base}/readyz")
            if status == 200:
                return body
            await asyncio.sleep(0.2)


@pytest.mark.kafka
async def test_worker_probes(processes: Start, tmp_path: Path) -> None:
    port = free_port()
    env = base_env(
        tmp_path,
        AMPLIFY_BUS="kafka",
        AMPLIFY_METRICS_PORT=str(port),
        AMPLIFY_KAFKA_SESSION_TIMEOUT_MS=str(SESSION_TIMEOUT_S * 1000),
    )
    worker = await processes("enhancer", ["worker", "enhancer"], env)
    await worker.wait_for_line("enhancer running in group")
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:
        assert await get_json(session, f"{base}/healthz") == (200, {"status": "ok"})
        assert await until_ready(session, base, 30) == {"status": "ok", "checks": {"group": "ok"}}
        status, content_type, text = await get(session, f"{base}/metrics")
        assert status == 200
        assert content_type.startswith("text/plain; version=")
        assert "# TYPE amplify_consumer_lag gauge" in text

        # Frozen past its session: asked meanwhile, it answers nothing; woken, it answers
        # at once, from a lapsed lease (the broker expelled it: no heartbeat can renew it).
        worker.process.send_signal(signal.SIGSTOP)
        try:
            await asyncio.sleep(FREEZE_S)
            ready = asyncio.create_task(get_json(session, f"{base}/readyz"))
            alive = asyncio.create_task(get_json(session, f"{base}/healthz"))
            await asyncio.sleep(1)
            assert not ready.done() and not alive.done()
        finally:
            worker.process.send_signal(signal.SIGCONT)
        assert await ready == (
            503,
            {"status": "unavailable", "checks": {"group": "down: not in group"}},
        )
        assert await alive == (200, {"status": "ok"})  # out of its group, but alive
        # It rejoins: ready again.
        assert await until_ready(session, base, 60) == {"status": "ok", "checks": {"group": "ok"}}

        assert await worker.stop() == 0
        with pytest.raises(aiohttp.ClientConnectionError):
            await get_json(session, f"{base}/healthz")
