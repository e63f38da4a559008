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

from tests.e2e.conftest import Proc
from tests.faults.client import StoryView, read_until, resume, ws_url
from tests.faults.scenario import ROLES, Scenario, resets, story_text
from tests.faults.stack import Gateway

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
async def test_worker_sigterm_hands_the_story_back(scenario: Scenario, role: str) -> None:
    await scenario.start(
        workers=[r for r in ROLES for _ in range(2)],
        AMPLIFY_WORKER_SHUTDOWN_GRACE_S=str(GRACE_S),
    )
    members = scenario.members(role)
    exits: list[float] = []
    for trial in scenario.trials(TRIALS, each_s=60):
        async with trial:
            await trial.submit(story_text(trial.number, passages=3))
            await trial.read_to_mid_stream(role)
            owner = await trial.owner(role, members)
            members.remove(owner)
            exits.append(await sigterm(scenario, trial.number, owner))
            members.append(await scenario.stack.worker(role))
            await trial.read_to_end()
        if trial.done:
            scenario.expect_status(trial.view, "completed")
            if resets(trial.view, role) == 0:
                scenario.fail(f"{trial.view.story_id}: handed back, yet the client saw no reset")

    await scenario.settle(timeout=60, stall=15)
    scenario.check_views()
    slowest = f"{max(exits):.1f}s" if exits else "none"
    counts = scenario.count(
        TRIALS, f"grace={GRACE_S}s sigterm_to_exit_max={slowest} (bound {GRACE_S + EXIT_MARGIN_S}s)"
    )
    assert counts.lost == 0
    assert counts.duplicated == 0
    assert not scenario.failures, "\n".join(scenario.failures[:20])


async def sigterm(scenario: Scenario, trial: int, worker: Proc) -> float:
    """The fault: SIGTERM to the worker; the seconds it took to exit (cleanly, and within
    its grace and margin)."""
    stopped = time.monotonic()
    code = await worker.stop(timeout=GRACE_S + EXIT_MARGIN_S)
    took = time.monotonic() - stopped
    if code != 0:
        scenario.fail(f"trial {trial}: {worker.name} exited {code} on SIGTERM")
    scenario.log(f"trial {trial}: {worker.name} exited in {took:.1f}s")
    return took


@pytest.mark.kafka
@pytest.mark.timeout(300)
async def test_gateway_sigterm_closes_sockets_going_away(scenario: Scenario) -> None:
    await scenario.start(workers=["enhancer", "narrator"], gateways=2)
    leaving, staying = scenario.gateways
    views = [scenario.view() for _ in range(SOCKETS)]
    sockets = await open_stories(scenario, leaving, views)
    closes = await stop_gateway(scenario, leaving, sockets, views)
    await resume_on(scenario, staying, views)

    await scenario.settle(timeout=60, stall=15)
    scenario.check_views()
    slowest = f"{max(a for _, a in closes):.2f}s" if closes else "none"
    counts = scenario.count(SOCKETS, f"sockets={SOCKETS} closed_within={slowest}")
    assert counts.accepted == SOCKETS
    assert counts.lost == 0
    assert counts.duplicated == 0
    assert not scenario.failures, "\n".join(scenario.failures[:20])


async def open_stories(
    scenario: Scenario, gateway: Gateway, views: list[StoryView]
) -> list[aiohttp.ClientWebSocketResponse]:
    """start: a story on each socket to ``gateway``, each read to its second delta."""
    sockets = [
        await scenario.session.ws_connect(ws_url(gateway.base), headers=scenario.headers)
        for _ in views
    ]
    for i, ws in enumerate(sockets):
        await ws.send_json({"type": "story.submit", "text": story_text(i, passages=2)})
    async with asyncio.timeout(60):
        for ws, view in zip(sockets, views, strict=True):
            await read_until(ws, view, lambda v: v.count("enhancement.delta") >= 2)
    return sockets


async def stop_gateway(
    scenario: Scenario,
    gateway: Gateway,
    sockets: list[aiohttp.ClientWebSocketResponse],
    views: list[StoryView],
) -> list[tuple[int | None, float]]:
    """The fault: SIGTERM to the gateway. Each socket hears the events in flight, then
    closes with 1001 within CLOSE_WITHIN_S; the gateway exits 0. Each close's code and
    seconds."""
    closes: list[tuple[int | None, float]] = []

    async def until_closed(ws: aiohttp.ClientWebSocketResponse, view: StoryView) -> None:
        began = time.monotonic()
        async for msg in ws:  # the events in flight, then the close
            if msg.type == aiohttp.WSMsgType.TEXT:
                view.add(msg.json())
        closes.append((ws.close_code, time.monotonic() - began))

    readers = [
        asyncio.create_task(until_closed(ws, v)) for ws, v in zip(sockets, views, strict=True)
    ]
    stopping = asyncio.create_task(gateway.proc.stop(timeout=20))
    try:
        async with asyncio.timeout(CLOSE_WITHIN_S):
            await asyncio.gather(*readers)
    except TimeoutError:
        scenario.fail(f"{sum(not r.done() for r in readers)} sockets open after SIGTERM")
    code = await stopping
    if code != 0:
        scenario.fail(f"the gateway exited {code} on SIGTERM")
    for close_code, _ in closes:
        if close_code != WSCloseCode.GOING_AWAY:
            scenario.fail(f"a socket closed with {close_code}, not 1001")
    scenario.log(f"closes {closes}, gateway exit {code}")
    return closes


async def resume_on(scenario: Scenario, gateway: Gateway, views: list[StoryView]) -> None:
    """recover: every client resumes on ``gateway`` from its last cursor."""
    for view in views:
        if view.completed is not None or view.story_id is None:
            continue
        try:
            async with (
                asyncio.timeout(60),
                scenario.session.ws_connect(ws_url(gateway.base), headers=scenario.headers) as ws,
            ):
                await resume(ws, view)
        except Exception as exc:
            scenario.fail(f"resuming {view.story_id}: {exc!r}")
