"""A worker dropped from its group mid-story, as a session timeout drops a frozen one,
goes on running until it finds out (a heartbeat later): a zombie. It must write nothing
more for the story: its lease holds its writes back, the new owner runs the story, and the
outcome topic has exactly one of each outcome.

On the memory bus, ``Group.expire`` drops the member the way the broker drops a frozen
one; on Kafka the same is tests/faults/test_frozen_worker.py, with real processes
stopped (SIGSTOP) and woken (SIGCONT).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from amplify_stream.bus.base import TopicPartition
from amplify_stream.bus.memory import MemoryBus
from amplify_stream.fakes.edge_tts import FakeEdgeConfig, serve_fake_edge_tts
from amplify_stream.gateway import keys
from consumers.runtime import running
from tests.integration.conftest import Service
from tests.integration.test_bus_outage import long_story
from tests.integration.test_pipeline import outcomes_of
from tests.support import sign_up

pytestmark = pytest.mark.parametrize("bus_kind", ["memory"], indirect=True)

StartService = Callable[..., Awaitable[Service]]
ROLES: dict[str, tuple[str, Callable[[list[dict[str, Any]]], bool]]] = {
    # role (a second member is ``running(role, ...)``): the topic it consumes, when the
    # story is mid-way for it
    "enhancer": (
        "stories",
        lambda events: sum(e["type"] == "enhancement.delta" for e in events) >= 3,
    ),
    "narrator": (
        "segments",
        lambda events: any(e["type"] == "audio.chunk" for e in events),
    ),
}


def stale_or_late(events: list[dict[str, Any]]) -> list[str]:
    """Events a client must never get: any after ``story.completed``; any of an attempt
    older than a reset of its stage before it."""
    problems = []
    newest: dict[str, int] = {}
    for i, event in enumerate(events):
        kind = event["type"]
        if any(e["type"] == "story.completed" for e in events[:i]):
            problems.append(f"{kind} after story.completed")
        stage = "narration" if kind.startswith("audio.") else "enhancement"
        attempt = event.get("attempt")
        if kind.endswith(".reset"):
            newest[stage] = int(attempt)
        elif attempt is not None and int(attempt) < newest.get(stage, 0):
            problems.append(f"{kind} of attempt {attempt} after the reset to {newest[stage]}")
    return problems


async def topic_events(bus: MemoryBus, topic: str, story_id: str) -> list[dict[str, Any]]:
    """The story's records on ``topic``, as a read_uncommitted watcher sees them."""
    ends = await bus.end_offsets(topic)
    partition = bus.partition_for(topic, story_id, len(ends))
    records = await bus.read_range(
        topic, partition, 0, ends[partition], isolation="read_uncommitted"
    )
    return [json.loads(r.value) for r in records if r.key == story_id]


@pytest.fixture
async def stack() -> AsyncIterator[contextlib.AsyncExitStack]:
    async with contextlib.AsyncExitStack() as resources:
        yield resources


@pytest.mark.parametrize("role", list(ROLES))
async def test_a_dropped_worker_writes_nothing_more_for_its_story(
    service: StartService,
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
    stack: contextlib.AsyncExitStack,
    role: str,
) -> None:
    caplog.set_level(logging.INFO)
    consumed, mid_story = ROLES[role]
    # A voice that takes its time (the fake edge-tts, a frame every 50 ms), so the
    # dropped narrator is mid-sentence with audio still to write.
    voice = await stack.enter_async_context(
        serve_fake_edge_tts(FakeEdgeConfig(port=0, chunk_delay_s=0.05))
    )
    svc = await service(local_piece_delay_ms=20, speech_provider="edge", edge_tts_url=voice.url)
    bus = svc.app[keys.BUS]
    assert isinstance(bus, MemoryBus)
    token = await sign_up(session, svc.base, "zombie")
    url = svc.base.replace("http", "ws", 1) + "/v1/stream"
    events: list[dict[str, Any]] = []
    async with running(role, bus, svc.settings):
        group = bus.group(f"{svc.settings.topic_prefix}.{role}")
        assert len(group.members) == 2
        async with (
            asyncio.timeout(60),
            session.ws_connect(url, headers={"Authorization": f"Bearer {token}"}) as ws,
        ):
            await ws.send_json(
                {"type": "story.submit", "text": long_story(12), "audio": role == "narrator"}
            )
            dropped: Any = None
            async for msg in ws:
                event = json.loads(msg.data)
                events.append(event)
                if dropped is None and mid_story(events):
                    # The member owning the story's partition is dropped, told nothing.
                    topic = svc.settings.topic(consumed)
                    tp = TopicPartition(
                        topic,
                        bus.partition_for(topic, event["story_id"], svc.settings.topic_partitions),
                    )
                    (dropped,) = [m for m in group.members if tp in m.assignment()]
                    caplog.clear()
                    await group.expire(dropped)
                if event["type"] == "story.completed":
                    break
    story_id = events[0]["story_id"]
    assert events[-1]["status"] == "completed", events[-1]
    reset = "enhancement.reset" if role == "enhancer" else "audio.reset"
    assert any(e["type"] == reset for e in events), "the new owner did not start again"
    assert stale_or_late(events) == []
    # The zombie's writes were held by its lease until it learned it had been dropped.
    messages = [r.getMessage() for r in caplog.records]
    assert any("held until the group confirms" in m for m in messages), messages
    assert any(m.startswith("revoked") for m in messages), messages
    # Nothing of it on the stream topic either (read as any watcher may).
    stream = await topic_events(bus, svc.topics.stream, story_id)
    assert stale_or_late(stream) == []
    outcomes = Counter(e["type"] for e in await outcomes_of(svc, story_id))
    expected = {"enhancement.completed": 1, "story.completed": 1}
    if role == "narrator":
        expected["narration.completed"] = 1
    assert outcomes == expected


async def test_a_rejoined_member_runs_again_what_comes_back_to_it(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    """The zombie joins again and may get the story's partition back: then it runs the
    story anew (a further attempt), still exactly once on the outcome topic."""
    svc = await service(local_piece_delay_ms=20)
    bus = svc.app[keys.BUS]
    assert isinstance(bus, MemoryBus)
    token = await sign_up(session, svc.base, "rejoin")
    url = svc.base.replace("http", "ws", 1) + "/v1/stream"
    events: list[dict[str, Any]] = []
    group = bus.group(f"{svc.settings.topic_prefix}.enhancer")
    async with (
        running("enhancer", bus, svc.settings),
        asyncio.timeout(60),
        session.ws_connect(url, headers={"Authorization": f"Bearer {token}"}) as ws,
    ):
        await ws.send_json({"type": "story.submit", "text": long_story(12), "audio": False})
        expired = 0
        async for msg in ws:
            event = json.loads(msg.data)
            events.append(event)
            deltas = sum(e["type"] == "enhancement.delta" for e in events)
            if deltas >= 3 * (expired + 1) and expired < 3:
                # Drop whoever owns it now, three times over.
                topic = svc.topics.stories
                tp = TopicPartition(
                    topic,
                    bus.partition_for(topic, event["story_id"], svc.settings.topic_partitions),
                )
                owners = [m for m in group.members if tp in m.assignment()]
                if owners:
                    expired += 1
                    await group.expire(owners[0])
            if event["type"] == "story.completed":
                break
    assert expired == 3
    assert events[-1]["status"] == "completed"
    assert stale_or_late(events) == []
    starts = [e["attempt"] for e in events if e["type"] == "enhancement.started"]
    assert starts == sorted(starts) and len(starts) >= 2, starts
    outcomes = Counter(e["type"] for e in await outcomes_of(svc, events[0]["story_id"]))
    assert outcomes == {"enhancement.completed": 1, "story.completed": 1}
