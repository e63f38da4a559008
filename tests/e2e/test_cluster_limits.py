"""Limits that hold cluster-wide, on separate processes: one user spread over three gateway
processes (one PostgreSQL store, one Redis, the real broker, a documents worker) gets
exactly the limit of stories a minute and of edits a second, no more
(``benchmarks/scale_limits.py`` drives the user; the figure runs the same); and one
user's documents on two documents workers have at most the limit of Gemini calls in
flight between them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from amplify_stream.fakes.gemini import FakeGeminiConfig, serve_fake_gemini
from benchmarks.scale_limits import one_user_through
from tests.e2e.conftest import Proc, base_env, wait_ready
from tests.integration.test_gemini_document_pass import peak
from tests.live_documents import writer
from tests.support import free_port, sign_up

Start = Callable[..., Awaitable[Proc]]

SUBMISSIONS_PER_MINUTE = 10
EDITS_PER_SECOND = 3


@pytest.mark.kafka
async def test_one_user_through_three_gateways_gets_exactly_the_limit(
    processes: Start, tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    env = base_env(
        tmp_path,
        AMPLIFY_BUS="kafka",
        AMPLIFY_DATABASE_URL=postgres_url,
        AMPLIFY_REDIS_URL=redis_url,
        AMPLIFY_SUBMISSIONS_PER_MINUTE=str(SUBMISSIONS_PER_MINUTE),
        AMPLIFY_MAX_RUNNING_PER_USER="1000",  # no enhancer runs them: they stay queued
        AMPLIFY_DOC_EDITS_PER_SECOND=str(EDITS_PER_SECOND),
    )
    documents = await processes("documents", ["worker", "documents"], env)
    ports = [free_port() for _ in range(3)]
    for n, port in enumerate(ports):
        await processes(f"gateway-{n}", ["gateway"], {**env, "AMPLIFY_PORT": str(port)})
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    await asyncio.gather(*(wait_ready(base) for base in bases))
    await documents.wait_for_line("documents running", timeout=90)
    async with aiohttp.ClientSession() as session:
        token = await sign_up(session, bases[0], "ada")
        figure = await one_user_through(
            bases,
            token,
            submissions_per_minute=SUBMISSIONS_PER_MINUTE,
            edits_per_second=EDITS_PER_SECOND,
            session=session,
        )
        stories = figure["submissions"]
        assert (stories["admitted"], stories["refused"]) == (10, 20), stories
        # Every refusal says when the oldest of the ten leaves the minute.
        assert set(stories["retry_after_s"]) <= {59, 60}, stories
        async with session.get(
            f"{bases[2]}/v1/stories?limit=100", headers={"Authorization": f"Bearer {token}"}
        ) as res:
            assert len((await res.json())["stories"]) == 10
        edits = figure["edits"]
        # 27 edits over three sockets, decided within less than the third of a second that
        # gives a token back: three admitted (each answered by its owner), 24 refused.
        assert edits["decided_within_ms"] < 1000 / EDITS_PER_SECOND, edits
        assert (edits["sent"], edits["admitted"], edits["refused"]) == (27, 3, 24), edits


@pytest.mark.kafka
async def test_a_users_gemini_calls_in_flight_are_capped_across_two_owners(
    processes: Start, tmp_path: Path, redis_url: str
) -> None:
    env = base_env(
        tmp_path,
        AMPLIFY_BUS="kafka",
        AMPLIFY_REDIS_URL=redis_url,
        AMPLIFY_ENHANCER_PROVIDER="gemini",
        GEMINI_API_KEY="fake-key-for-tests",
        AMPLIFY_DOC_GEMINI_CALLS_PER_USER="2",
        AMPLIFY_DOC_IDLE_MS="0",
    )
    # Each owner calls a fake of its own, so the calls say which owner made them; a call
    # lasts about a quarter of a second.
    config = FakeGeminiConfig(port=0, first_token_ms=100, tokens_per_s=600)
    async with contextlib.AsyncExitStack() as stack:
        fakes = [await stack.enter_async_context(serve_fake_gemini(config)) for _ in range(2)]
        owners = [
            await processes(
                f"documents-{n}",
                ["worker", "documents"],
                {**env, "AMPLIFY_GEMINI_BASE_URL": fake.base_url},
            )
            for n, fake in enumerate(fakes)
        ]
        port = free_port()
        await processes("gateway", ["gateway"], {**env, "AMPLIFY_PORT": str(port)})
        base = f"http://127.0.0.1:{port}"
        await wait_ready(base)
        for owner in owners:
            await owner.wait_for_line("documents running", timeout=90)
        text = "\n".join(
            [
                "Mara was very angry at the harbour wall.",
                "Suddenly the rain came down on the very old boats.",
                "The gulls went quiet, very quiet.",
            ]
        )
        async with aiohttp.ClientSession() as session:
            token = await sign_up(session, base, "ada")

            async def one_document() -> None:
                async with writer(session, base, token) as w:
                    await w.open(text)
                    await w.settled(timeout=60)

            # Six documents at once, their partitions (so their owners) drawn by their
            # ids: again until both owners have had some (all on one: 1 in 32 a round).
            for _ in range(4):
                await asyncio.gather(*(one_document() for _ in range(6)))
                if all(fake.record.calls for fake in fakes):
                    break
    assert all(fake.record.calls for fake in fakes), "every document on one owner"
    calls = [call for fake in fakes for call in fake.record.calls]
    assert {call.state for call in calls} == {"completed"}
    # Two at a time between the two owners (each alone would have allowed two).
    assert peak(calls) == 2
