"""A worker killed (SIGKILL) in the middle of a story: another member of its group takes
the story over, the client hears a reset and then the whole story, and the outcome topic
holds exactly one ``story.completed``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp
import pytest

from tests.faults.conftest import (
    Budget,
    StackFactory,
    StoryView,
    TopicLog,
    count_stories,
    new_user,
    owner_of,
    progress,
    read_until,
    story_text,
    summarize,
    ws_url,
)

TRIALS = 10
ROLES = ("enhancer", "narrator")
# Per story: mid-stream, a kill, a rebalance (the session timeout) and the replay: a
# few seconds with a 3 s session timeout.
TRIAL_TIMEOUT_S = 20
# For all trials; the rest of the 300 s is start-up, the outcome check and teardown.
TRIALS_BUDGET_S = 150


def mid_stream(role: str) -> tuple[str, Callable[[StoryView], bool]]:
    """When the story is mid-stream for ``role``: some deltas, resp. some audio."""
    if role == "enhancer":
        return (
            "3 deltas",
            lambda v: v.count("enhancement.delta") >= 3 and v.count("enhancement.completed") == 0,
        )
    return "1 audio chunk", lambda v: v.count("audio.chunk") >= 1 and v.audio_completed is None


@pytest.mark.kafka
@pytest.mark.timeout(300)
@pytest.mark.parametrize("role", ROLES)
async def test_worker_killed_mid_stream(stacks: StackFactory, role: str) -> None:
    name = f"test_worker_killed_mid_stream[{role}]"
    stack = await stacks()
    gateway, *started = await asyncio.gather(
        stack.gateway(), *(stack.worker(r) for r in ROLES for _ in range(2))
    )
    alive = [p for p in started if p.name.startswith(role)]
    point, reached = mid_stream(role)
    views: list[StoryView] = []
    failures: list[str] = []
    recoveries: list[float] = []
    kills = 0
    began = time.monotonic()
    budget = Budget(TRIALS_BUDGET_S)
    async with (
        aiohttp.ClientSession() as session,
        TopicLog(stack.bootstrap, stack.topic("outcomes")) as outcomes,
    ):
        token = await new_user(session, gateway.base)
        headers = {"Authorization": f"Bearer {token}"}
        for trial in range(TRIALS):
            if budget.left <= 1:
                failures.append(f"out of time: {trial} of {TRIALS} trials ran")
                break
            view = StoryView()
            views.append(view)
            try:
                async with (
                    budget.timeout(TRIAL_TIMEOUT_S),
                    session.ws_connect(ws_url(gateway.base), headers=headers) as ws,
                ):
                    await ws.send_json({"type": "story.submit", "text": story_text(trial)})
                    await read_until(ws, view, reached)
                    if view.completed is not None or view.story_id is None:
                        failures.append(f"trial {trial}: the story ended before {point}")
                        continue
                    # The victim is the story's owner, certainly: a kill that may miss
                    # the story would prove nothing.
                    owner = await owner_of(alive, role, view)
                    if owner is None:
                        failures.append(f"trial {trial}: {view.story_id}'s {role} not certain")
                        continue
                    victim = owner
                    victim.process.kill()
                    await victim.process.wait()
                    killed_at = time.monotonic()
                    alive.remove(victim)
                    alive.append(await stack.worker(role, wait=False))
                    progress(name, f"trial {trial}: {view.story_id} killed {victim.name}")
                    await read_until(ws, view)
                    recoveries.append(time.monotonic() - killed_at)
                    progress(name, f"trial {trial}: completed {recoveries[-1]:.1f}s after")
            except Exception as exc:
                failures.append(
                    f"trial {trial} (story {view.story_id}): {exc!r}; "
                    f"last events {[e.get('type') for e in view.events[-3:]]}"
                )
                progress(name, failures[-1])
                continue
            sid = view.story_id
            assert view.completed is not None
            if view.completed.get("status") != "completed":
                failures.append(f"{sid}: story.completed status {view.completed.get('status')}")
            kills += 1
            if role == "enhancer" and view.enhancement_resets == 0:
                failures.append(f"{sid}: the enhancer running it was killed; no enhancement.reset")
            if role == "narrator" and view.audio_resets == 0:
                failures.append(f"{sid}: the narrator running it was killed; no audio.reset")
        accepted = [v.story_id for v in views if v.story_id is not None]
        await outcomes.wait_completed(accepted, timeout=60, stall=15)
        timelines: list[str] = []
        for view in views:
            if view.story_id is not None and view.completed is not None:
                failures += view.check_against(outcomes)
            if view.story_id and any(view.story_id in f for f in failures) and len(timelines) < 2:
                timelines.append(f"as the client saw {view.story_id}: {view.timeline()}")
        # The replacements joined their group (none of them crashed on the way).
        for proc in alive:
            try:
                await proc.wait_for_line(f"{role} running", timeout=30)
            except (AssertionError, TimeoutError) as exc:
                failures.append(f"replacement {proc.name} did not start: {exc!r}")
        timeout_ms = stack.env["AMPLIFY_KAFKA_SESSION_TIMEOUT_MS"]
        spread = f"{min(recoveries):.1f}..{max(recoveries):.1f}s" if recoveries else "none"
        details = [
            f"session_timeout_ms={timeout_ms} owners_killed={kills}/{TRIALS} "
            f"kill_to_completed={spread} "
            f"elapsed={time.monotonic() - began:.1f}s",
            *summarize(failures),
            *timelines,
        ]
        counts = count_stories(name, TRIALS, accepted, outcomes, details)
    assert counts.lost == 0
    assert counts.duplicated == 0
    assert not failures, "\n".join(failures[:20])
