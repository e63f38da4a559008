"""The service as real processes (the helpers of tests/e2e/conftest.py): the gateways and
workers of one test, on one topic prefix."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from tests.e2e.conftest import Proc, base_env
from tests.faults.broker import SESSION_TIMEOUT_MS
from tests.support import free_port

Start = Callable[..., Awaitable[Proc]]


@dataclass
class Gateway:
    proc: Proc
    base: str


async def wait_until_ready(proc: Proc, base: str, timeout: float = 60) -> None:
    async with aiohttp.ClientSession() as session, asyncio.timeout(timeout):
        while True:
            if proc.process.returncode is not None:
                raise AssertionError(f"{proc.name} exited: {''.join(proc.output)[-3000:]}")
            try:
                async with session.get(f"{base}/readyz") as res:
                    if res.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)


class Stack:
    """The service's processes of one test: one topic prefix, one data directory (the
    SQLite store every gateway shares), one JWT secret."""

    def __init__(self, start: Start, env: dict[str, str]) -> None:
        self._start = start
        self.env = env
        self.procs: list[Proc] = []
        self._serial = 0

    @property
    def bootstrap(self) -> str:
        return self.env["AMPLIFY_KAFKA_BOOTSTRAP_SERVERS"]

    def topic(self, name: str) -> str:
        return f"{self.env['AMPLIFY_TOPIC_PREFIX']}.{name}.v1"

    def _name(self, role: str) -> str:
        self._serial += 1
        return f"{role}-{self._serial}"

    async def worker(self, role: str, *, wait: bool = True) -> Proc:
        proc = await self._start(self._name(role), ["worker", role], self.env)
        self.procs.append(proc)
        if wait:
            await proc.wait_for_line(f"{role} running", timeout=90)
        return proc

    async def gateway(self) -> Gateway:
        port = free_port()
        env = {**self.env, "AMPLIFY_PORT": str(port)}
        proc = await self._start(self._name("gateway"), ["gateway"], env)
        self.procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        await wait_until_ready(proc, base)
        return Gateway(proc, base)

    async def start(self, name: str, args: list[str], env: dict[str, str]) -> Proc:
        proc = await self._start(name, args, env)
        self.procs.append(proc)
        return proc

    async def stop_all(self) -> None:
        await asyncio.gather(*(p.stop() for p in self.procs), return_exceptions=True)


def fault_env(tmp_path: Path, bootstrap: str, **extra: str) -> dict[str, str]:
    env = base_env(
        tmp_path,
        AMPLIFY_BUS="kafka",
        AMPLIFY_KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        AMPLIFY_TOPIC_PREFIX=f"faults{uuid.uuid4().hex[:8]}",
        AMPLIFY_ENHANCER_PROVIDER="local",
        AMPLIFY_SPEECH_PROVIDER="espeak",
        AMPLIFY_LOCAL_PIECE_DELAY_MS="20",
        AMPLIFY_KAFKA_SESSION_TIMEOUT_MS=str(SESSION_TIMEOUT_MS),
        # The gateway's per-user limits are not under test here.
        AMPLIFY_SUBMISSIONS_PER_MINUTE="1000000",
        AMPLIFY_MAX_RUNNING_PER_USER="1000000",
        AMPLIFY_LOGIN_ATTEMPTS_PER_MINUTE_PER_USER="1000000",
        AMPLIFY_LOGIN_ATTEMPTS_PER_MINUTE_PER_ADDRESS="1000000",
    )
    env.update(extra)
    return env


StackFactory = Callable[..., Awaitable[Stack]]


async def with_fake_gemini(
    stacks: StackFactory, *, first_token_ms: int, tokens_per_s: float, **env: str
) -> tuple[Stack, str]:
    """A stack (with ``env``) whose enhancers call the fake Gemini, run as a process of its
    own (a model that answers after ``first_token_ms``, then writes ``tokens_per_s``); and
    its URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    stack = await stacks(
        AMPLIFY_ENHANCER_PROVIDER="gemini",
        GEMINI_API_KEY="fake-key-for-tests",
        AMPLIFY_GEMINI_BASE_URL=base,
        AMPLIFY_FAKE_GEMINI_PORT=str(port),
        AMPLIFY_FAKE_GEMINI_FIRST_TOKEN_MS=str(first_token_ms),
        AMPLIFY_FAKE_GEMINI_TOKENS_PER_S=str(tokens_per_s),
        **env,
    )
    fake = await stack.start("fake-gemini", ["fake", "gemini"], stack.env)
    await fake.wait_for_line("fake Gemini on", timeout=60)
    return stack, base


async def fake_gemini_record(session: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    """What the fake Gemini saw (``GET /_fake/record``): counts and every call."""
    async with session.get(f"{base}/_fake/record") as res:
        assert res.status == 200, f"GET /_fake/record: {res.status} (the fake has no record)"
        record: dict[str, Any] = await res.json()
        return record
