"""Clients that drop their socket mid-story and resume on another gateway by cursor get
every event after it exactly once: the text and audio they assemble are the outcome's."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from tests.faults.conftest import (
    StackFactory,
    StoryView,
    TopicLog,
    count_stories,
    new_user,
    read_until,
    rng_for,
    story_text,
    summarize,
    ws_url,
)

CLIENTS = 50
CONCURRENT = 10
# A story here is about 120 events (deltas, suggestions, audio chunks and words):
# dropping after 1..DROP_MAX of them lands anywhere from before the first delta to the
# end of the narration.
DROP_MAX = 110


@pytest.mark.kafka
@pytest.mark.timeout(180)
async def test_resume_across_gateways(stacks: StackFactory) -> None:
    name = "test_resume_across_gateways"
    stack = await stacks()
    await asyncio.gather(stack.worker("enhancer"), stack.worker("narrator"))
    gateway_a, gateway_b = await asyncio.gather(stack.gateway(), stack.gateway())
    rng, seed = rng_for(name)
    drops = [rng.randint(1, DROP_MAX) for _ in range(CLIENTS)]
    views = [StoryView() for _ in range(CLIENTS)]
    failures: list[str] = []
    resumed = 0
    began = time.monotonic()
    async with (
        aiohttp.ClientSession() as session,
        TopicLog(stack.bootstrap, stack.topic("outcomes")) as outcomes,
    ):
        token = await new_user(session, gateway_a.base)
        headers = {"Authorization": f"Bearer {token}"}
        slots = asyncio.Semaphore(CONCURRENT)

        async def client(i: int) -> None:
            nonlocal resumed
            view = views[i]
            async with slots, asyncio.timeout(60):
                async with session.ws_connect(ws_url(gateway_a.base), headers=headers) as ws:
                    await ws.send_json(
                        {"type": "story.submit", "text": story_text(i), "request_id": f"c{i}"}
                    )
                    await read_until(ws, view, lambda v: len(v.events) >= drops[i])
                # Dropped. Another gateway, from the last cursor seen (none: from the start).
                if view.completed is not None or view.story_id is None:
                    return
                resumed += 1
                async with session.ws_connect(ws_url(gateway_b.base), headers=headers) as ws:
                    resume = {"type": "story.resume", "story_id": view.story_id}
                    if view.last_cursor is not None:
                        resume["cursor"] = view.last_cursor
                    await ws.send_json(resume)
                    await read_until(ws, view)

        async def guarded(i: int) -> None:
            try:
                await client(i)
            except Exception as exc:
                failures.append(f"client {i} (story {views[i].story_id}): {exc!r}")

        await asyncio.gather(*(guarded(i) for i in range(CLIENTS)))
        accepted = [v.story_id for v in views if v.story_id is not None]
        await outcomes.wait_completed(accepted, timeout=60)
        timelines: list[str] = []
        for view in views:
            if view.story_id is not None:
                problems = view.check_against(outcomes)
                failures += problems
                if problems and len(timelines) < 2:
                    timelines.append(f"as the client saw {view.story_id}: {view.timeline()}")
        elapsed = time.monotonic() - began
        sizes = sorted(v.count("audio.word") + v.count("enhancement.delta") for v in views)
        details = [
            f"seed={seed} clients={CLIENTS} concurrent={CONCURRENT} resumed={resumed} "
            f"elapsed={elapsed:.1f}s deltas+words/story={sizes[0]}..{sizes[-1]}",
            *summarize(failures),
            *timelines,
        ]
        counts = count_stories(name, CLIENTS, accepted, outcomes, details)
    assert counts.accepted == CLIENTS, failures[:5]
    assert counts.lost == 0
    assert counts.duplicated == 0
    assert resumed >= CLIENTS // 2, "most clients should drop mid-story; tune DROP_MAX"
    assert not failures, "\n".join(failures[:20])
