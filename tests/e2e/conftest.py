"""Real processes: the ``amplify-stream`` command started as users and operators start it."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from tests.support import TEST_STREAM_PARTITIONS, TEST_TOPIC_PARTITIONS, free_port

KAFKA = os.environ.get("AMPLIFY_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
COMMAND = str(Path(sys.executable).parent / "amplify-stream")
# The checkout these tests are in. The command's own sys.path starts at the venv's bin, so
# without this an editable install made from another checkout (a git worktree sharing the
# venv) would be what runs, page and all, and not the code under test.
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Proc:
    name: str
    process: asyncio.subprocess.Process
    output: list[str] = field(default_factory=list)
    _reader: asyncio.Task[None] | None = None

    async def wait_for_line(self, needle: str, timeout: float = 60, start: int = 0) -> str:
        """The first line with ``needle`` (from line ``start`` on), once it is there."""
        async with asyncio.timeout(timeout):
            while True:
                for line in self.output[start:]:
                    if needle in line:
                        return line
                if self.process.returncode is not None:
                    raise AssertionError(f"{self.name} exited: {''.join(self.output)[-3000:]}")
                await asyncio.sleep(0.05)

    async def stop(self, timeout: float = 20) -> int:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(timeout):
                code = await self.process.wait()
        except TimeoutError:
            self.process.kill()
            code = await self.process.wait()
        if self._reader is not None:
            await self._reader
        return code


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def base_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AMPLIFY_") and k != "GEMINI_API_KEY"
    }
    env.update(
        AMPLIFY_KAFKA_BOOTSTRAP_SERVERS=KAFKA,
        AMPLIFY_TOPIC_PREFIX=f"e2e{uuid.uuid4().hex[:8]}",
        AMPLIFY_DATA_DIR=str(tmp_path),
        AMPLIFY_JWT_SECRET="e2e-" + uuid.uuid4().hex * 2,
        AMPLIFY_BCRYPT_ROUNDS="4",
        AMPLIFY_LOCAL_PIECE_DELAY_MS="2",
        # Topics are created per test: the suite's partition counts (tests.conftest).
        AMPLIFY_TOPIC_PARTITIONS=str(TEST_TOPIC_PARTITIONS),
        AMPLIFY_STREAM_PARTITIONS=str(TEST_STREAM_PARTITIONS),
        NO_PROXY="127.0.0.1,localhost",
        PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])]),
        # "auto" probes edge-tts: a closed loopback port keeps the probe on this machine
        # (and exercises the fall-back to the offline voice).
        AMPLIFY_EDGE_TTS_URL=f"ws://127.0.0.1:{closed_port()}/edge?",
    )
    env.update(extra)
    return env


@pytest.fixture
async def processes() -> AsyncIterator[Callable[..., Awaitable[Proc]]]:
    started: list[Proc] = []

    async def start(name: str, args: list[str], env: dict[str, str]) -> Proc:
        process = await asyncio.create_subprocess_exec(
            COMMAND,
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        proc = Proc(name, process)

        async def read() -> None:
            assert process.stdout is not None
            async for line in process.stdout:
                proc.output.append(line.decode(errors="replace"))

        proc._reader = asyncio.create_task(read())
        started.append(proc)
        return proc

    yield start
    for proc in started:
        await proc.stop()


async def wait_ready(base: str, timeout: float = 60) -> None:
    async with aiohttp.ClientSession() as session, asyncio.timeout(timeout):
        while True:
            try:
                async with session.get(f"{base}/readyz") as res:
                    if res.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)


async def start_serve(
    processes: Callable[..., Awaitable[Proc]], tmp_path: Path, **service_env: str
) -> tuple[Proc, str, dict[str, str]]:
    """``amplify-stream serve`` as a user starts it, ready: the process, its URL and the
    environment it runs in."""
    port = free_port()
    env = base_env(tmp_path, AMPLIFY_PORT=str(port), **service_env)
    serve = await processes("serve", ["serve"], env)
    base = f"http://127.0.0.1:{port}"
    await serve.wait_for_line(f"open the live editor at {base}/")
    await wait_ready(base)
    return serve, base, env


async def run_to_end(process: asyncio.subprocess.Process, timeout: float) -> tuple[str, bool]:
    """What a process printed (stdout, stderr into it), and whether it ended in time (one
    that did not is killed)."""
    try:
        async with asyncio.timeout(timeout):
            out, _ = await process.communicate()
        return out.decode(errors="replace"), True
    except TimeoutError:
        process.kill()
        out, _ = await process.communicate()
        return out.decode(errors="replace"), False
