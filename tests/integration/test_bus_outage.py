"""The bus goes away mid-story and comes back (simulated on the memory bus; the real
broker outage is tests/faults/test_broker_outage.py): the story still completes, exactly
once, with its narration started again from the first sentence."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from amplify_stream.bus.memory import MemoryBus
from amplify_stream.gateway import keys
from tests.integration.conftest import Service
from tests.integration.test_narration import audio_of
from tests.integration.test_pipeline import outcomes_of
from tests.support import sign_up

pytestmark = pytest.mark.parametrize("bus_kind", ["memory"], indirect=True)

StartService = Callable[..., Awaitable[Service]]
OUTAGE_S = 1.5


async def story_with_outage(
    svc: Service,
    session: aiohttp.ClientSession,
    text: str,
    at: str,
    outage: Callable[[MemoryBus, aiohttp.ClientWebSocketResponse, dict[str, Any]], None],
) -> tuple[list[dict[str, Any]], int]:
    """Submit ``text`` over a socket and read to ``story.completed``; ``outage(bus, ws,
    event)`` runs at the first event of type ``at``. Returns the events and the number
    seen when the outage began."""
    bus = svc.app[keys.BUS]
    assert isinstance(bus, MemoryBus)
    token = await sign_up(session, svc.base, "outage")
    url = svc.base.replace("http", "ws", 1) + "/v1/stream"
    events: list[dict[str, Any]] = []
    outage_at: int | None = None
    async with (
        asyncio.timeout(60),
        session.ws_connect(url, headers={"Authorization": f"Bearer {token}"}) as ws,
    ):
        await ws.send_json({"type": "story.submit", "text": text})
        async for msg in ws:
            event = json.loads(msg.data)
            events.append(event)
            if event["type"] == at and outage_at is None:
                outage_at = len(events)
                outage(bus, ws, event)
            if event["type"] == "story.completed":
                break
    assert outage_at is not None, f"no {at} before the story ended"
    return events, outage_at


def cut_for(seconds: float) -> Callable[[MemoryBus, Any, Any], None]:
    """An outage of ``seconds``."""

    def cut(bus: MemoryBus, _ws: Any, _event: Any) -> None:
        bus.set_reachable(False)
        asyncio.get_running_loop().call_later(seconds, bus.set_reachable, True)

    return cut


def long_story(sentences: int) -> str:
    return " ".join(
        f"Night {i + 1} came slowly over the harbour while Mara counted the lanterns "
        "one by one and listened to the gulls."
        for i in range(sentences)
    )


async def test_narration_survives_a_bus_outage_after_the_rewrite_ended(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    # The rewrite (and every sentence for the narrator) is out before the outage; the
    # narration is not: the narrator must run it again with the sentences it was fed.
    svc = await service(narrator_concurrency=1)
    events, outage_at = await story_with_outage(
        svc, session, long_story(40), "enhancement.completed", cut_for(OUTAGE_S)
    )
    types = [e["type"] for e in events]
    assert "audio.completed" not in types[:outage_at], "the narration ended before the outage"
    assert types.count("story.completed") == 1
    assert events[-1]["status"] == "completed", events[-1]
    assert "audio.reset" in types[outage_at:], "the narration was not run again"
    assert "enhancement.reset" not in types, "the rewrite had ended: it is not run again"
    # The client keeps what follows the last audio.started: one whole narration.
    last_start = len(types) - 1 - types[::-1].index("audio.started")
    final = events[last_start:]
    completed = next(e for e in final if e["type"] == "audio.completed")
    audio = audio_of(final)
    assert hashlib.sha256(audio).hexdigest() == completed["sha256"]
    outcomes = await outcomes_of(svc, events[0]["story_id"])
    done = [o for o in outcomes if o["type"] == "story.completed"]
    assert len(done) == 1 and done[0]["status"] == "completed"
    narrated = [o for o in outcomes if o["type"] == "narration.completed"]
    assert [o["sha256"] for o in narrated] == [completed["sha256"]]


async def test_a_story_survives_a_bus_outage_mid_rewrite(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service(local_piece_delay_ms=20)
    events, outage_at = await story_with_outage(
        svc, session, long_story(6), "enhancement.delta", cut_for(OUTAGE_S)
    )
    types = [e["type"] for e in events]
    assert types.count("story.completed") == 1
    assert events[-1]["status"] == "completed", events[-1]
    assert "enhancement.reset" in types[outage_at:], "the rewrite was not run again"
    # After the last reset: one whole rewrite, and one whole narration of it.
    last_reset = len(types) - 1 - types[::-1].index("enhancement.reset")
    final = events[last_reset:]
    rewrite = next(e for e in final if e["type"] == "enhancement.completed")
    assert "".join(e["text"] for e in final if e["type"] == "enhancement.delta") == rewrite["text"]
    final_types = [e["type"] for e in final]
    narration = final[len(final_types) - 1 - final_types[::-1].index("audio.started") :]
    completed = next(e for e in narration if e["type"] == "audio.completed")
    assert hashlib.sha256(audio_of(narration)).hexdigest() == completed["sha256"]
    outcomes = await outcomes_of(svc, events[0]["story_id"])
    assert [o["status"] for o in outcomes if o["type"] == "story.completed"] == ["completed"]


async def test_a_cancel_while_the_story_waits_for_the_bus_holds(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    # The enhancer's stream fails at the first delta and waits (0.5 s, then 1 s) for the
    # bus; the cancel comes in between, when nothing of the story is running: the next
    # attempt must not run the story again but end it cancelled.
    svc = await service(local_piece_delay_ms=20)
    cancelling: list[asyncio.Task[None]] = []

    def cut_then_cancel(bus: MemoryBus, ws: aiohttp.ClientWebSocketResponse, event: Any) -> None:
        async def cancel_once_the_bus_is_back() -> None:
            await asyncio.sleep(1.0)
            bus.set_reachable(True)
            await ws.send_json({"type": "story.cancel", "story_id": event["story_id"]})

        bus.set_reachable(False)
        cancelling.append(asyncio.get_running_loop().create_task(cancel_once_the_bus_is_back()))

    events, _ = await story_with_outage(
        svc, session, long_story(6), "enhancement.delta", cut_then_cancel
    )
    assert cancelling and cancelling[0].done()
    types = [e["type"] for e in events]
    assert events[-1]["status"] == "cancelled", events[-1]
    assert "enhancement.completed" not in types
    outcomes = await outcomes_of(svc, events[0]["story_id"])
    assert [o["status"] for o in outcomes if o["type"] == "story.completed"] == ["cancelled"]
