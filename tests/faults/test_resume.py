"""Clients that drop their socket mid-story and resume on another gateway by cursor get
every event after it exactly once: the text and audio they assemble are the outcome's."""

from __future__ import annotations

import asyncio

import pytest

from tests.faults.client import StoryView, read_until, resume, ws_url
from tests.faults.scenario import Scenario, rng_for, story_text

CLIENTS = 50
CONCURRENT = 10
# A story here is about 120 events (deltas, suggestions, audio chunks and words):
# dropping after 1..DROP_MAX of them lands anywhere from before the first delta to the
# end of the narration.
DROP_MAX = 110


@pytest.mark.kafka
@pytest.mark.timeout(180)
async def test_resume_across_gateways(scenario: Scenario) -> None:
    await scenario.start(workers=["enhancer", "narrator"], gateways=2)
    rng, seed = rng_for(scenario.name)
    drops = [rng.randint(1, DROP_MAX) for _ in range(CLIENTS)]
    views = [scenario.view() for _ in range(CLIENTS)]
    slots = asyncio.Semaphore(CONCURRENT)
    resumed: list[int] = []

    async def client(i: int) -> None:
        try:
            async with slots, asyncio.timeout(60):
                await drop_and_resume(scenario, i, views[i], drops[i], resumed)
        except Exception as exc:
            scenario.fail(f"client {i} (story {views[i].story_id}): {exc!r}")

    await asyncio.gather(*(client(i) for i in range(CLIENTS)))

    await scenario.settle(timeout=60)
    scenario.check_views()
    sizes = sorted(v.count("audio.word") + v.count("enhancement.delta") for v in views)
    counts = scenario.count(
        CLIENTS,
        f"seed={seed} clients={CLIENTS} concurrent={CONCURRENT} resumed={len(resumed)} "
        f"elapsed={scenario.elapsed:.1f}s deltas+words/story={sizes[0]}..{sizes[-1]}",
    )
    assert counts.accepted == CLIENTS, scenario.failures[:5]
    assert counts.lost == 0
    assert counts.duplicated == 0
    assert len(resumed) >= CLIENTS // 2, "most clients should drop mid-story; tune DROP_MAX"
    assert not scenario.failures, "\n".join(scenario.failures[:20])


async def drop_and_resume(
    scenario: Scenario, i: int, view: StoryView, drop: int, resumed: list[int]
) -> None:
    """start: a story on the first gateway; the fault: the socket dropped after ``drop``
    events; recover: on the other gateway, from the last cursor seen (none: from the
    start), unless the story had ended by then. ``resumed`` gets ``i`` when it resumes."""
    first, other = scenario.gateways
    async with scenario.session.ws_connect(ws_url(first.base), headers=scenario.headers) as ws:
        await ws.send_json({"type": "story.submit", "text": story_text(i), "request_id": f"c{i}"})
        await read_until(ws, view, lambda v: len(v.events) >= drop)
    if view.completed is not None or view.story_id is None:
        return
    resumed.append(i)
    async with scenario.session.ws_connect(ws_url(other.base), headers=scenario.headers) as ws:
        await resume(ws, view)
