"""``amplify-stream watch`` against the real broker: outcomes published the way the
workers publish them (transactional), read back as JSON aggregates."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from amplify_stream.bus import Bus, create_bus
from amplify_stream.commands.watch import MissingTopic, WatchOptions, watch
from amplify_stream.config import Settings
from amplify_stream.events import (
    EnhancementCompletedOutcome,
    EnhancementFailedOutcome,
    EnhancementTimings,
    ErrorInfo,
    NarrationCompletedOutcome,
    NarrationFailedOutcome,
    NarrationTimings,
    Outcome,
    StoryCompletedOutcome,
    StoryTimings,
    Usage,
)
from amplify_stream.topics import Topics
from producers.outcomes import OutcomePublisher
from tests.conftest import SettingsFactory, delete_topics
from tests.integration.conftest import Service
from tests.support import STORY, sign_up, ws_story

pytestmark = pytest.mark.kafka


@pytest.fixture
async def kafka_settings(make_settings: SettingsFactory, kafka_bootstrap: str) -> Settings:
    return make_settings(bus="kafka")


@pytest.fixture
async def kafka_bus(kafka_settings: Settings) -> AsyncIterator[Bus]:
    bus = create_bus(kafka_settings)
    await bus.start()
    await bus.ensure_topics(Topics.from_settings(kafka_settings).specs())
    try:
        yield bus
    finally:
        await bus.close()
        await delete_topics(
            kafka_settings.kafka_bootstrap_servers, f"{kafka_settings.topic_prefix}."
        )


@pytest.fixture
async def publish(
    kafka_bus: Bus, kafka_settings: Settings
) -> AsyncIterator[Callable[[list[Outcome]], Awaitable[None]]]:
    producer = kafka_bus.producer(transactional_id=f"watch-test-{uuid.uuid4().hex}")
    await producer.start()
    publisher = OutcomePublisher(producer, kafka_settings.topic("outcomes"))
    try:
        yield publisher.publish
    finally:
        await producer.stop()


def story_outcomes(
    first_token_ms: float, first_audio_ms: float | None, failure: str | None = None
) -> list[Outcome]:
    ids: dict[str, Any] = {"story_id": str(uuid.uuid4()), "user_id": "u1", "attempt": 1}
    if failure is not None:
        return [
            EnhancementFailedOutcome(**ids, error=ErrorInfo(code=failure, message="x"), attempts=1),
            StoryCompletedOutcome(
                **ids,
                status="failed",
                error=ErrorInfo(code=failure, message="x"),
                timings=StoryTimings(total_ms=50),
            ),
        ]
    outcomes: list[Outcome] = [
        EnhancementCompletedOutcome(
            **ids,
            provider="local",
            model="m",
            input_chars=10,
            text="t",
            suggestions=[],
            insights=[],
            usage=Usage(),
            timings=EnhancementTimings(queue_ms=1, first_token_ms=first_token_ms, total_ms=900),
        )
    ]
    if first_audio_ms is None:
        outcomes.append(
            NarrationFailedOutcome(**ids, error=ErrorInfo(code="tts_unavailable", message="x"))
        )
    else:
        outcomes.append(
            NarrationCompletedOutcome(
                **ids,
                provider="espeak",
                voice="en-us",
                duration_ms=1000,
                bytes=100,
                sha256="0" * 64,
                chunks=1,
                words=2,
                timings=NarrationTimings(first_audio_ms=first_audio_ms, total_ms=1000),
            )
        )
    outcomes.append(
        StoryCompletedOutcome(**ids, status="completed", timings=StoryTimings(total_ms=1000))
    )
    return outcomes


async def watched(settings: Settings, **options: Any) -> list[dict[str, Any]]:
    out = io.StringIO()
    values: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "topic": settings.topic("outcomes"),
        "as_json": True,
    }
    async with asyncio.timeout(60):
        assert await watch(WatchOptions(**(values | options)), out) == 0
    return [json.loads(line) for line in out.getvalue().splitlines()]


async def test_once_from_earliest_aggregates_everything(
    kafka_settings: Settings, publish: Callable[[list[Outcome]], Awaitable[None]]
) -> None:
    for first_token in (100, 200, 300, 400):
        await publish(story_outcomes(first_token, first_token * 2))
    await publish(story_outcomes(500, None))  # narration failed, story still completed
    await publish(story_outcomes(0, 0, failure="provider_error"))
    [snapshot] = await watched(kafka_settings, start="earliest", once=True)
    assert snapshot["events"] == 5 * 3 + 2
    assert snapshot["stories_total"] == {"completed": 5, "failed": 1, "cancelled": 0}
    assert snapshot["stories_per_minute"] == {"completed": 5, "failed": 1, "cancelled": 0}
    assert snapshot["failures"] == {
        "enhancement": {"provider_error": 1},
        "narration": {"tts_unavailable": 1},
    }
    assert snapshot["first_token_ms"] == {"count": 5, "p50": 300, "p95": 500, "p99": 500}
    assert snapshot["first_audio_ms"] == {"count": 4, "p50": 400, "p95": 800, "p99": 800}


async def test_from_a_time_skips_what_came_before(
    kafka_settings: Settings, publish: Callable[[list[Outcome]], Awaitable[None]]
) -> None:
    await publish(story_outcomes(100, 100))
    await publish(story_outcomes(0, 0, failure="provider_error"))
    await asyncio.sleep(0.05)
    since = datetime.now(UTC).isoformat()
    await asyncio.sleep(0.05)
    await publish(story_outcomes(700, 900))
    start = datetime.fromisoformat(since).timestamp()
    [snapshot] = await watched(kafka_settings, start=start, once=True)
    assert snapshot["stories_total"] == {"completed": 1, "failed": 0, "cancelled": 0}
    assert snapshot["first_token_ms"]["p50"] == 700
    assert snapshot["failures"] == {"enhancement": {}, "narration": {}}


async def test_a_named_group_goes_on_where_it_stopped(
    kafka_settings: Settings, publish: Callable[[list[Outcome]], Awaitable[None]]
) -> None:
    group = f"{kafka_settings.topic_prefix}.watch.analytics"
    await publish(story_outcomes(100, 100))
    [first] = await watched(kafka_settings, group=group, start="earliest", once=True)
    assert first["stories_total"]["completed"] == 1
    await publish(story_outcomes(200, 200))
    await publish(story_outcomes(300, 300))
    [second] = await watched(kafka_settings, group=group, once=True)
    assert second["stories_total"]["completed"] == 2
    assert second["first_token_ms"]["p50"] == 200


async def test_a_missing_topic_is_an_error_not_created(kafka_settings: Settings) -> None:
    topic = kafka_settings.topic("nothing")
    options = WatchOptions(kafka_settings.kafka_bootstrap_servers, topic, once=True)
    with pytest.raises(MissingTopic, match="does not exist"):
        await watch(options, io.StringIO())
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        assert topic not in await admin.list_topics()
    finally:
        await admin.close()


async def test_live_intervals_over_a_duration(
    kafka_settings: Settings,
    publish: Callable[[list[Outcome]], Awaitable[None]],
) -> None:
    async def later() -> None:
        await asyncio.sleep(1.5)
        await publish(story_outcomes(150, 250))

    writer = asyncio.create_task(later())
    snapshots = await watched(kafka_settings, start="latest", duration_s=3.2, interval_s=1.0)
    await writer
    assert len(snapshots) >= 3  # one per interval, and the last at the end
    assert snapshots[0]["stories_total"]["completed"] == 0
    assert snapshots[-1]["stories_total"]["completed"] == 1
    assert snapshots[-1]["first_audio_ms"]["p50"] == 250


@pytest.mark.parametrize("bus_kind", ["kafka"], indirect=True)
async def test_a_real_story_shows_up(service: Callable[..., Awaitable[Service]]) -> None:
    svc = await service()
    async with aiohttp.ClientSession() as session:
        token = await sign_up(session, svc.base, "watcher")
        events = await ws_story(session, svc.base, token, {"text": STORY})
    assert events[-1]["status"] == "completed"
    [snapshot] = await watched(svc.settings, start="earliest", once=True)
    assert snapshot["stories_total"]["completed"] == 1
    assert snapshot["first_token_ms"]["count"] == 1
    assert snapshot["first_audio_ms"]["count"] == 1
    assert snapshot["first_token_ms"]["p50"] > 0
