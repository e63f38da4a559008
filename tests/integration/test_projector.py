"""The projector: outcomes folded into the store, read back with ``GET /v1/stories...``,
on both buses; replays harmless, aborted transactions and bad records skipped, results
kept across a restart."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import aiohttp
import pytest
from pydantic import BaseModel

from amplify_stream.bus import Bus, create_bus
from amplify_stream.config import Settings
from amplify_stream.events import (
    EnhancementCompletedOutcome,
    EnhancementTimings,
    InsightFields,
    StoryCompletedOutcome,
    StoryOptions,
    StoryTimings,
    SuggestionFields,
    Usage,
    encode,
    headers_for,
    outcome_adapter,
)
from amplify_stream.events.documents import (
    DocumentAnalyzedOutcome,
    DocumentSnapshot,
    DocumentTimings,
    LiveSuggestionRecord,
)
from amplify_stream.fakes.gemini import FakeGeminiServer
from amplify_stream.gateway import keys
from amplify_stream.store.db import create_engine, create_schema, session_factory
from amplify_stream.store.documents import DocumentStore
from amplify_stream.store.stories import StoryStore
from amplify_stream.store.users import UserStore
from amplify_stream.topics import Topics
from consumers.runtime import running
from producers.outcomes import OutcomePublisher
from tests.conftest import SettingsFactory, delete_topics
from tests.integration.conftest import Service
from tests.integration.test_pipeline import outcomes_of
from tests.support import STORY, sign_up, ws_story

StartService = Callable[..., Awaitable[Service]]
StartGemini = Callable[..., Awaitable[FakeGeminiServer]]

TERMINAL = {"completed", "failed", "cancelled"}
RFC3339_MS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
DETAIL_FIELDS = {"story_id", "status", "title", "created_at", "text", "suggestions", "insights"}
SHORT = 'Mara opened the door. "Hello," she said quietly.'


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def get_json(
    session: aiohttp.ClientSession, url: str, token: str, status: int = 200
) -> dict[str, Any]:
    async with session.get(url, headers=auth(token)) as res:
        body: dict[str, Any] = await res.json()
        assert res.status == status, body
        return body


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 30) -> None:
    """Poll ``check`` until it holds: the state is in another component, with no event."""
    async with asyncio.timeout(timeout):
        while True:
            if await check():
                return
            await asyncio.sleep(0.05)


async def settled(
    session: aiohttp.ClientSession, svc: Service, token: str, story_id: str, timeout: float = 30
) -> dict[str, Any]:
    """``GET /v1/stories/{id}`` once the projector has ended the story."""
    async with asyncio.timeout(timeout):
        while True:
            body = await get_json(session, f"{svc.base}/v1/stories/{story_id}", token)
            if body["status"] in TERMINAL:
                return body
            await asyncio.sleep(0.05)


async def submit(session: aiohttp.ClientSession, svc: Service, token: str, **body: Any) -> str:
    async with session.post(f"{svc.base}/v1/stories", json=body, headers=auth(token)) as res:
        answer = await res.json()
        assert res.status == 202, answer
        story_id: str = answer["story_id"]
        return story_id


def assert_timestamps(body: dict[str, Any]) -> None:
    assert RFC3339_MS_Z.match(body["created_at"]), body["created_at"]
    if "completed_at" in body:
        assert RFC3339_MS_Z.match(body["completed_at"]), body["completed_at"]
        assert body["completed_at"] >= body["created_at"]


def fields_of(model: type[BaseModel], event: dict[str, Any]) -> dict[str, Any]:
    """The part of a stream event that the story keeps (no type, cursor, at...)."""
    return {name: event.get(name) for name in model.model_fields}


async def test_completed_story_has_its_results(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service()
    token = await sign_up(session, svc.base, "ada")
    events = await ws_story(session, svc.base, token, {"text": STORY, "title": "The lighthouse"})
    story_id = events[0]["story_id"]
    assert events[-1]["status"] == "completed"
    body = await settled(session, svc, token, story_id)

    # Exactly docs/protocol.md's fields, the optional ones present because they apply.
    assert set(body) == DETAIL_FIELDS | {"completed_at", "enhanced_text", "audio"}
    assert (body["story_id"], body["status"], body["title"]) == (
        story_id,
        "completed",
        "The lighthouse",
    )
    assert body["text"] == STORY
    assert_timestamps(body)
    enhanced = next(e for e in events if e["type"] == "enhancement.completed")
    assert body["enhanced_text"] == enhanced["text"]
    suggestions = [fields_of(SuggestionFields, e) for e in events if e["type"] == "suggestion"]
    assert suggestions and body["suggestions"] == suggestions
    insights = [fields_of(InsightFields, e) for e in events if e["type"] == "insight"]
    assert {i["focus"] for i in body["insights"]} == {"plot", "character", "dialogue", "setting"}
    assert body["insights"] == insights
    audio = next(e for e in events if e["type"] == "audio.completed")
    assert body["audio"] == {
        "format": "audio/mpeg",
        "duration_ms": audio["duration_ms"],
        "bytes": audio["bytes"],
        "sha256": audio["sha256"],
        "url": f"/v1/stories/{story_id}/audio",
    }
    async with session.get(svc.base + body["audio"]["url"], headers=auth(token)) as res:
        assert res.status == 200
        assert hashlib.sha256(await res.read()).hexdigest() == audio["sha256"]

    # Replays (at-least-once) change nothing.
    store = svc.app[keys.STORY_STORE]
    for outcome in await outcomes_of(svc, story_id):
        await store.apply_outcome(outcome_adapter.validate_python(outcome))
    assert await get_json(session, f"{svc.base}/v1/stories/{story_id}", token) == body


@pytest.mark.parametrize("bus_kind", ["memory"], indirect=True)
async def test_failed_story_shows_its_error(
    service: StartService, session: aiohttp.ClientSession, fake_gemini: StartGemini
) -> None:
    fake = await fake_gemini(fault="status", fault_status=400)  # not retried
    svc = await service(
        enhancer_provider="gemini",
        gemini_api_key="test-key",
        gemini_base_url=fake.base_url,
    )
    token = await sign_up(session, svc.base, "ada")
    story_id = await submit(session, svc, token, text=STORY)
    body = await settled(session, svc, token, story_id)
    assert set(body) == DETAIL_FIELDS | {"completed_at", "error"}
    assert body["status"] == "failed"
    assert body["error"]["code"] == "provider_error" and body["error"]["message"]
    assert body["title"] is None and body["suggestions"] == [] and body["insights"] == []
    assert_timestamps(body)


@pytest.mark.parametrize("bus_kind", ["memory"], indirect=True)
async def test_cancelled_story_says_so(
    service: StartService, session: aiohttp.ClientSession, fake_gemini: StartGemini
) -> None:
    fake = await fake_gemini(first_token_ms=100, tokens_per_s=5)  # minutes of rewrite
    svc = await service(
        enhancer_provider="gemini", gemini_api_key="test-key", gemini_base_url=fake.base_url
    )
    token = await sign_up(session, svc.base, "ada")
    story_id = await submit(session, svc, token, text=STORY, audio=False)
    # Cancel once the enhancer runs it (a cancel before that finds nothing to stop).

    async def running() -> bool:
        return bool(fake.record.calls)

    await until(running, timeout=10)
    async with session.post(f"{svc.base}/v1/stories/{story_id}/cancel", headers=auth(token)) as res:
        assert res.status == 202
        assert await res.json() == {"story_id": story_id, "status": "cancelling"}
    body = await settled(session, svc, token, story_id)
    assert body["status"] == "cancelled"
    assert body["error"]["code"] == "cancelled"
    assert "audio" not in body and "enhanced_text" not in body


@pytest.mark.parametrize("bus_kind", ["memory"], indirect=True)
async def test_speech_failure_is_the_error_of_a_completed_story(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    from amplify_stream.fakes.edge_tts import FakeEdgeConfig, serve_fake_edge_tts

    async with serve_fake_edge_tts(FakeEdgeConfig(port=0, fault="rate_limited")) as fake:
        svc = await service(
            speech_provider="edge",
            edge_tts_url=fake.url,
            tts_retry_attempts=2,
            tts_retry_initial_delay_s=0.05,
        )
        token = await sign_up(session, svc.base, "ada")
        story_id = await submit(session, svc, token, text=SHORT)
        body = await settled(session, svc, token, story_id)
    assert body["status"] == "completed"
    assert body["enhanced_text"]
    assert "audio" not in body
    assert body["error"]["code"] == "tts_unavailable"


@pytest.mark.parametrize("bus_kind", ["memory"], indirect=True)
async def test_list_is_newest_first_and_pages(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service()
    ada = await sign_up(session, svc.base, "ada")
    bob = await sign_up(session, svc.base, "bob")
    ids = [
        await submit(session, svc, ada, text=SHORT, title=f"draft {i}", audio=False)
        for i in range(5)
    ]
    for story_id in ids:
        await settled(session, svc, ada, story_id)
    newest_first = ids[::-1]
    base = f"{svc.base}/v1/stories"

    everything = await get_json(session, base, ada)
    assert [s["story_id"] for s in everything["stories"]] == newest_first
    assert everything["next"] is None
    first = everything["stories"][0]
    assert set(first) == {"story_id", "status", "title", "created_at", "completed_at"}
    assert (first["status"], first["title"]) == ("completed", "draft 4")
    assert_timestamps(first)

    pages: list[list[str]] = []
    url: str | None = f"{base}?limit=2"
    while url is not None:
        page = await get_json(session, url, ada)
        pages.append([s["story_id"] for s in page["stories"]])
        url = None if page["next"] is None else f"{base}?limit=2&before={page['next']}"
    assert pages == [newest_first[:2], newest_first[2:4], newest_first[4:]]

    assert await get_json(session, base, bob) == {"stories": [], "next": None}
    for query in ("limit=0", "limit=101", "limit=two", "limit=", "before="):
        error = await get_json(session, f"{base}?{query}", ada, status=400)
        assert error["error"]["code"] == "invalid_message", query
    # A ``before`` that is not one of yours: the same answer, whoever's it is.
    not_mine = await get_json(session, f"{base}?before={ids[0]}", bob, status=400)
    missing = await get_json(session, f"{base}?before=no-such-story", bob, status=400)
    assert not_mine == missing
    async with session.get(base) as res:
        assert res.status == 401


async def test_results_survive_a_restart(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    first = await service()
    token = await sign_up(session, first.base, "ada")
    events = await ws_story(session, first.base, token, {"text": SHORT})
    story_id = events[0]["story_id"]
    before = await settled(session, first, token, story_id)
    assert before["status"] == "completed" and "audio" in before
    await first.stop()

    # The same data directory (and, on Kafka, the same topics and projector group).
    second = await service()
    after = await get_json(session, f"{second.base}/v1/stories/{story_id}", token)
    assert after == before
    listed = await get_json(session, f"{second.base}/v1/stories", token)
    assert [s["story_id"] for s in listed["stories"]] == [story_id]
    async with session.get(second.base + after["audio"]["url"], headers=auth(token)) as res:
        assert res.status == 200
        assert hashlib.sha256(await res.read()).hexdigest() == after["audio"]["sha256"]


async def test_projector_alone_skips_aborted_and_bad_records(settings: Settings, bus: Bus) -> None:
    """``amplify-stream worker projector``: its own store, read_committed, a DLQ."""
    topics = Topics.from_settings(settings)
    await bus.ensure_topics(topics.specs())
    engine = create_engine(settings)
    await create_schema(engine)
    sessions = session_factory(engine)
    stories = StoryStore(sessions)
    try:
        user = await UserStore(sessions).create("ada", "hash")
        await stories.create_story(
            story_id="s1",
            user_id=user.id,
            options=StoryOptions(text="Once."),
            stream_partition=0,
            stream_offset=0,
        )
        enhanced = EnhancementCompletedOutcome(
            story_id="s1", user_id=user.id, attempt=1, provider="local", model="m",
            input_chars=5, text="Once upon a time.", suggestions=[], insights=[],
            usage=Usage(), timings=EnhancementTimings(queue_ms=1, first_token_ms=1, total_ms=2),
        )  # fmt: skip
        done = StoryCompletedOutcome(
            story_id="s1", user_id=user.id, attempt=1, status="completed",
            timings=StoryTimings(total_ms=3),
        )  # fmt: skip
        failed = done.model_copy(update={"status": "failed"})
        producer = bus.producer(transactional_id=f"{settings.topic_prefix}.test-outcomes")
        await producer.start()
        try:
            outcomes = OutcomePublisher(producer, topics.outcomes)
            with pytest.raises(RuntimeError):
                async with producer.transaction():
                    await producer.send(topics.outcomes, "s1", encode(failed), headers_for("x"))
                    raise RuntimeError("abort")
            async with producer.transaction():
                await producer.send(topics.outcomes, "s1", b"not json")
            await outcomes.publish([enhanced, done])
            await outcomes.publish([enhanced, done])  # a replay
        finally:
            await producer.stop()

        async with running("projector", bus, settings) as projector:
            assert projector.group_id == f"{settings.topic_prefix}.projector"

            async def projected() -> bool:
                return (await stories.get_for_user("s1", user.id)).status != "queued"

            await until(projected)
        story = await stories.get_for_user("s1", user.id)
        assert story.status == "completed"  # not the aborted "failed"
        assert story.enhanced_text == "Once upon a time."
        assert isinstance(story.completed_at, datetime)
        assert story.error is None

        async with asyncio.timeout(30), bus.read(topics.dlq, {0: 0}) as letters:
            letter = json.loads((await anext(aiter(letters))).value)
        assert (letter["type"], letter["source_topic"]) == ("dead_letter", topics.outcomes)
    finally:
        await engine.dispose()


# ------------------------------------------------------------ live documents


async def test_projector_folds_document_snapshots(
    make_settings: SettingsFactory, bus_kind: str
) -> None:
    """Snapshots written straight onto the snapshots topic (no owner): the newest version
    of each document lands in the store, older ones and aborted checkpoints never, a
    deleted marker removes the row, its tombstone and ``document.analyzed`` outcomes are
    skipped, a bad record is dead-lettered."""
    # One partition: the records below are read in the order they are written, so the
    # last one's landing says every one before it was handled.
    settings = make_settings(bus=bus_kind, topic_partitions=1)
    topics = Topics.from_settings(settings)
    bus = create_bus(settings)
    await bus.start()
    engine = create_engine(settings)
    try:
        await bus.ensure_topics(topics.specs())
        await create_schema(engine)
        sessions = session_factory(engine)
        documents = DocumentStore(sessions)
        user = await UserStore(sessions).create("ada", "hash")
        await documents.create("d2", user.id, title=None, focus=["plot"], text="Gone soon.")

        def snap(doc_id: str, version: int, **fields: Any) -> DocumentSnapshot:
            return DocumentSnapshot(
                doc_id=doc_id, user_id=user.id, created_at="2030-01-01T00:00:00.000Z",
                offset=version, title="Draft", focus=["plot"], text=f"Version {version}.",
                version=version, suggestions=[], current=[True], ids=0, across=[],
            ).model_copy(update=fields)  # fmt: skip

        found = LiveSuggestionRecord(
            id="s1", focus="plot", quote="Version", message="m", start_utf16=0, end_utf16=7
        )
        analyzed = DocumentAnalyzedOutcome(
            doc_id="d1", user_id=user.id, version=3, provider="local",
            suggestions={"plot": 1}, paragraphs=1, reanalyzed=1,
            timings=DocumentTimings(idle_ms=300, analysis_ms=2),
        )  # fmt: skip
        records: list[tuple[str, str, bytes | None]] = [
            (topics.snapshots, "d1", encode(snap("d1", 1))),
            (topics.snapshots, "d1", encode(snap("d1", 3))),
            (topics.snapshots, "d1", encode(snap("d1", 2))),  # older: ignored
            (topics.outcomes, "d1", encode(analyzed)),
            (topics.snapshots, "d2", encode(snap("d2", 1))),
            (topics.snapshots, "d2", encode(snap("d2", 0, deleted=True, focus=[], text=""))),
            (topics.snapshots, "d2", None),  # the tombstone after the marker
            (topics.snapshots, "d1", b"not json"),
            (topics.snapshots, "d1", encode(snap("d1", 3, suggestions=[found]))),
            (topics.snapshots, "d3", encode(snap("d3", 0))),  # the last one
        ]
        producer = bus.producer(transactional_id=f"{settings.topic_prefix}.test-snapshots")
        await producer.start()
        try:
            with pytest.raises(RuntimeError):
                async with producer.transaction():
                    await producer.send(topics.snapshots, "d1", encode(snap("d1", 9)))
                    raise RuntimeError("abort")
            async with producer.transaction():
                for topic, key, value in records:
                    await producer.send(topic, key, value)
        finally:
            await producer.stop()

        async with running("projector", bus, settings):

            async def projected() -> bool:
                return await documents.exists_for_user("d3", user.id)

            await until(projected)
        d1 = await documents.get_for_user("d1", user.id)
        assert (d1.version, d1.text) == (3, "Version 3.")  # not the aborted 9, nor 2 after 3
        assert d1.suggestions == (found.model_dump(),)
        assert not await documents.exists_for_user("d2", user.id)
        assert [d.doc_id for d in await documents.list_for_user(user.id)] == ["d3", "d1"]

        # One dead letter: the bad record (neither the tombstone nor the outcome).
        assert await bus.end_offsets(topics.dlq) == {0: 1}
        async with asyncio.timeout(30), bus.read(topics.dlq, {0: 0}) as letters:
            letter = json.loads((await anext(aiter(letters))).value)
        assert letter["source_topic"] == topics.snapshots
        assert base64.b64decode(letter["payload"]) == b"not json"
    finally:
        await engine.dispose()
        await bus.close()
        if settings.bus == "kafka":
            await delete_topics(settings.kafka_bootstrap_servers, f"{settings.topic_prefix}.")
