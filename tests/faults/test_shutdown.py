"""SIGTERM mid-story. A worker stops taking stories, finishes what it runs within its
grace period or hands it back uncommitted (another member of its group runs it again),
and exits; a gateway closes its sockets with GOING_AWAY (1001) and exits, and its clients
resume on another gateway. No story is lost or completed twice."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from aiohttp import WSCloseCode

from tests.faults.conftest import (
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
from tests.faults.test_worker_crash import ROLES, mid_stream

TRIALS = 3
# Shorter than a story here (three passages: ~10 s of rewrite at 20 ms a piece), so the
# stopping worker hands the story back rather than finishing it.
GRACE_S = 1.0
# A stopping worker exits within its grace plus this (leaving the group, closing clients).
EXIT_MARGIN_S = 8.0
SOCKETS = 5
# A stopping gateway closes every socket within this.
CLOSE_WITHIN_S = 3.0


@pytest.mark.kafka
@pytest.mark.timeout(300)
@pytest.mark.parametrize("role", ROLES)
async def test_worker_sigterm_hands_the_story_back(stacks: StackFactory, role: str) -> None:
    name = f"test_worker_sigterm_hands_the_story_back[{role}]"
    stack = await stacks(AMPLIFY_WORKER_SHUTDOWN_GRACE_S=str(GRACE_S))
    gateway, *started = await asyncio.gather(
        stack.gateway(), *(stack.worker(r) for r in ROLES for _ in range(2))
    )
    alive = [p for p in started if p.name.startswith(role)]
    point, reached = mid_stream(role)
    views: list[StoryView] = []
    failures: list[str] = []
    exits: list[float] = []
    async with (
        aiohttp.ClientSession() as session,
        TopicLog(stack.bootstrap, stack.topic("outcomes")) as outcomes,
    ):
        token = await new_user(session, gateway.base)
        headers = {"Authorization": f"Bearer {token}"}
        for trial in range(TRIALS):
            view = StoryView()
            views.append(view)
            try:
                async with (
                    asyncio.timeout(60),
                    session.ws_connect(ws_url(gateway.base), headers=headers) as ws,
                ):
                    text = story_text(trial, passages=3)
                    await ws.send_json({"type": "story.submit", "text": text})
                    await read_until(ws, view, reached)
                    if view.completed is not None or view.story_id is None:
                        failures.append(f"trial {trial}: the story ended before {point}")
                        continue
                    owner = await owner_of(alive, role, view)
                    if owner is None:
                        failures.append(f"trial {trial}: {view.story_id}'s {role} not certain")
                        continue
                    alive.remove(owner)
                    stopped = time.monotonic()
                    code = await owner.stop(timeout=GRACE_S + EXIT_MARGIN_S)
                    exits.append(time.monotonic() - stopped)
                    if code != 0:
                        failures.append(f"trial {trial}: {owner.name} exited {code} on SIGTERM")
                    progress(name, f"trial {trial}: {owner.name} exited in {exits[-1]:.1f}s")
                    alive.append(await stack.worker(role))
                    await read_until(ws, view)
            except Exception as exc:
                failures.append(f"trial {trial} (story {view.story_id}): {exc!r}")
                continue
            if view.completed.get("status") != "completed":  # type: ignore[union-attr]
                failures.append(f"{view.story_id}: status {view.completed}")
            resets = view.enhancement_resets if role == "enhancer" else view.audio_resets
            if resets == 0:
                failures.append(f"{view.story_id}: handed back, yet the client saw no reset")
        accepted = [v.story_id for v in views if v.story_id is not None]
        await outcomes.wait_completed(accepted, timeout=60, stall=15)
        for view in views:
            if view.story_id is not None:
                failures += view.check_against(outcomes)
        slowest = f"{max(exits):.1f}s" if exits else "none"
        details = [
            f"grace={GRACE_S}s sigterm_to_exit_max={slowest} (bound {GRACE_S + EXIT_MARGIN_S}s)",
            *summarize(failures),
        ]
        counts = count_stories(name, TRIALS, accepted, outcomes, details)
    assert counts.lost == 0
    assert counts.duplicated == 0
    assert not failures, "\n".join(failures[:20])


@pytest.mark.kafka
@pytest.mark.timeout(300)
async def test_gateway_sigterm_closes_sockets_going_away(stacks: StackFactory) -> None:
    name = "test_gateway_sigterm_closes_sockets_going_away"
    stack = await stacks()
    leaving, staying, *_ = await asyncio.gather(
        stack.gateway(), stack.gateway(), stack.worker("enhancer"), stack.worker("narrator")
    )
    views = [StoryView() for _ in range(SOCKETS)]
    failures: list[str] = []
    closes: list[tuple[int | None, float]] = []
    async with (
        aiohttp.ClientSession() as session,
        TopicLog(stack.bootstrap, stack.topic("outcomes")) as outcomes,
    ):
        token = await new_user(session, leaving.base)
        headers = {"Authorization": f"Bearer {token}"}
        sockets = [
            await session.ws_connect(ws_url(leaving.base), headers=headers) for _ in range(SOCKETS)
        ]
        for i, ws in enumerate(sockets):
            await ws.send_json({"type": "story.submit", "text": story_text(i, passages=2)})
        async with asyncio.timeout(60):
            for ws, view in zip(sockets, views, strict=True):
                await read_until(ws, view, lambda v: v.count("enhancement.delta") >= 2)

        async def until_closed(ws: aiohttp.ClientWebSocketResponse, view: StoryView) -> None:
            began = time.monotonic()
            async for msg in ws:  # the events in flight, then the close
                if msg.type == aiohttp.WSMsgType.TEXT:
                    view.add(msg.json())
            closes.append((ws.close_code, time.monotonic() - began))

        readers = [
            asyncio.create_task(until_closed(ws, v)) for ws, v in zip(sockets, views, strict=True)
        ]
        stopping = asyncio.create_task(leaving.proc.stop(timeout=20))
        try:
            async with asyncio.timeout(CLOSE_WITHIN_S):
                await asyncio.gather(*readers)
        except TimeoutError:
            failures.append(f"{sum(not r.done() for r in readers)} sockets open after SIGTERM")
        code = await stopping
        if code != 0:
            failures.append(f"the gateway exited {code} on SIGTERM")
        for close_code, _ in closes:
            if close_code != WSCloseCode.GOING_AWAY:
                failures.append(f"a socket closed with {close_code}, not 1001")
        progress(name, f"closes {closes}, gateway exit {code}")
        # Every client resumes on the other gateway from its last cursor.
        for view in views:
            if view.completed is not None or view.story_id is None:
                continue
            try:
                async with (
                    asyncio.timeout(60),
                    session.ws_connect(ws_url(staying.base), headers=headers) as ws,
                ):
                    resume = {"type": "story.resume", "story_id": view.story_id}
                    if view.last_cursor is not None:
                        resume["cursor"] = view.last_cursor
                    await ws.send_json(resume)
                    await read_until(ws, view)
            except Exception as exc:
                failures.append(f"resuming {view.story_id}: {exc!r}")
        accepted = [v.story_id for v in views if v.story_id is not None]
        await outcomes.wait_completed(accepted, timeout=60, stall=15)
        for view in views:
            if view.story_id is not None:
                failures += view.check_against(outcomes)
        slowest = f"{max(a for _, a in closes):.2f}s" if closes else "none"
        details = [f"sockets={SOCKETS} closed_within={slowest}", *summarize(failures)]
        counts = count_stories(name, SOCKETS, accepted, outcomes, details)
    assert counts.accepted == SOCKETS
    assert counts.lost == 0
    assert counts.duplicated == 0
    assert not failures, "\n".join(failures[:20])
