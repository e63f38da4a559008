"""The streaming pipeline end to end, in one process, on the memory bus and on real Kafka:
submit, enhance, stream to the client, publish the outcome."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer

from amplify_stream.gateway import keys
from amplify_stream.providers.local.rules import RULES
from tests.integration.conftest import Service
from tests.support import STORY, assert_story_stream, assert_valid, sign_up, sse_story, ws_story

StartService = Callable[..., Awaitable[Service]]


async def outcomes_of(service: Service, story_id: str, timeout: float = 30) -> list[dict[str, Any]]:
    """Every outcome record of the story, read as analytics would (read_committed),
    once its ``story.completed`` is there (and a little longer, to catch duplicates)."""
    topic = service.topics.outcomes
    found: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        if service.settings.bus == "kafka":
            consumer = AIOKafkaConsumer(
                topic,
                bootstrap_servers=service.settings.kafka_bootstrap_servers,
                isolation_level="read_committed",
                auto_offset_reset="earliest",
                enable_auto_commit=False,
            )
            await consumer.start()
            try:
                while not any(e["type"] == "story.completed" for e in found):
                    batch = await consumer.getmany(timeout_ms=200)
                    for records in batch.values():
                        for r in records:
                            event = json.loads(r.value)
                            if event.get("story_id") == story_id:  # document.analyzed has none
                                assert r.key.decode() == story_id
                                headers = dict(r.headers)
                                assert headers["event-type"].decode() == event["type"]
                                assert headers["content-type"] == b"application/json"
                                assert headers["schema-version"] == b"1"
                                found.append(event)
                # Anything published twice would be right behind.
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    found += [
                        e
                        for e in (json.loads(r.value) for r in records)
                        if e.get("story_id") == story_id
                    ]
            finally:
                await consumer.stop()
        else:
            bus = service.app[keys.BUS]
            begins = await bus.begin_offsets(topic)
            async with bus.read(topic, begins, isolation="read_committed") as records:
                async for r in records:
                    event = json.loads(r.value)
                    if event.get("story_id") == story_id:  # document.analyzed has none
                        found.append(event)
                    if (await bus.end_offsets(topic)).get(r.partition, 0) == r.offset + 1 and any(
                        e["type"] == "story.completed" for e in found
                    ):
                        break
    return found


def assert_outcomes(outcomes: list[dict[str, Any]], status: str = "completed") -> None:
    types = [e["type"] for e in outcomes]
    assert types.count("story.completed") == 1, types
    for event in outcomes:
        assert_valid(event, f"outcomes.{event['type']}")
    done = next(e for e in outcomes if e["type"] == "story.completed")
    assert done["status"] == status
    if status == "completed":
        assert types.count("enhancement.completed") == 1, types


async def test_websocket_story_streams_and_publishes_outcome(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service()
    token = await sign_up(session, svc.base, "ada")
    events = await ws_story(session, svc.base, token, {"text": STORY, "request_id": "r1"})
    assert events[0]["request_id"] == "r1"
    completed = assert_story_stream(events, STORY)
    outcomes = await outcomes_of(svc, events[0]["story_id"])
    assert_outcomes(outcomes)
    result = next(e for e in outcomes if e["type"] == "enhancement.completed")
    assert result["text"] == completed["text"]
    assert result["provider"] == "local"
    assert result["input_chars"] == len(STORY)
    suggestions = result["suggestions"]
    assert len(suggestions) == completed["suggestions"]
    assert all(STORY[s["start"] : s["end"]] == s["quote"] for s in suggestions)
    # Each names its rule from the catalogue (GET /v1/rules), on the socket as in the outcome.
    assert suggestions and all(s["rule"] in RULES for s in suggestions)
    streamed = [e for e in events if e["type"] == "suggestion"]
    assert [s["rule"] for s in streamed] == [s["rule"] for s in suggestions]


async def test_http_story_streams_as_sse(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service()
    token = await sign_up(session, svc.base, "grace")
    events = await sse_story(
        session,
        svc.base,
        token,
        {"text": STORY, "focus": ["plot", "dialogue", "character", "setting"]},
    )
    assert_story_stream(events, STORY)
    assert_outcomes(await outcomes_of(svc, events[0]["story_id"]))


async def test_http_story_202_then_events_from_the_first(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service()
    token = await sign_up(session, svc.base, "linus")
    auth = {"Authorization": f"Bearer {token}"}
    async with session.post(f"{svc.base}/v1/stories", json={"text": STORY}, headers=auth) as res:
        assert res.status == 202
        body = await res.json()
    story_id = body["story_id"]
    assert body["status"] == "queued"
    assert body["links"] == {
        "self": f"/v1/stories/{story_id}",
        "events": f"/v1/stories/{story_id}/events",
        "audio": f"/v1/stories/{story_id}/audio",
    }
    outcomes = await outcomes_of(svc, story_id)
    assert_outcomes(outcomes)
    # After the story finished, its whole stream is still there, from the first event.
    from tests.support import sse_events

    async with session.get(
        f"{svc.base}/v1/stories/{story_id}/events", headers={**auth, "Accept": "text/event-stream"}
    ) as res:
        events = [e async for e in sse_events(res)]
    assert_story_stream([{"type": "story.accepted", "story_id": story_id}, *events], STORY)
    # ... and resumes after any cursor: exactly the later events.
    middle = events[len(events) // 2]
    async with session.get(
        f"{svc.base}/v1/stories/{story_id}/events",
        headers={**auth, "Last-Event-ID": middle["cursor"]},
    ) as res:
        rest = [e async for e in sse_events(res)]
    assert rest == events[len(events) // 2 + 1 :]


async def test_websocket_resume_from_first_event_and_ping(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service()
    token = await sign_up(session, svc.base, "barbara")
    first = await ws_story(session, svc.base, token, {"text": STORY})
    story_id = first[0]["story_id"]
    url = svc.base.replace("http", "ws", 1) + "/v1/stream"
    async with session.ws_connect(url, protocols=("amplify.v1", f"bearer.{token}")) as ws:
        assert ws.protocol == "amplify.v1"
        await ws.send_json({"type": "ping", "request_id": "p"})
        assert (await ws.receive_json())["type"] == "pong"
        await ws.send_json({"type": "story.resume", "story_id": story_id})
        replay = []
        async with asyncio.timeout(30):
            while not replay or replay[-1]["type"] != "story.completed":
                replay.append(await ws.receive_json())
    assert replay == first[1:]


async def test_bad_frames_get_invalid_message_and_socket_stays_open(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service()
    token = await sign_up(session, svc.base, "edsger")
    url = svc.base.replace("http", "ws", 1) + f"/v1/stream?access_token={token}"
    async with session.ws_connect(url) as ws:
        for frame in [
            "not json",
            json.dumps({"type": "nope"}),
            json.dumps({"type": "story.submit"}),
        ]:
            await ws.send_str(frame)
            reply = await ws.receive_json()
            assert reply["type"] == "error" and reply["code"] == "invalid_message", reply
        await ws.send_bytes(b"\x00\x01")
        assert (await ws.receive_json())["code"] == "invalid_message"
        await ws.send_json({"type": "story.submit", "text": "x" * 50_001, "request_id": "big"})
        reply = await ws.receive_json()
        assert reply["code"] == "story_too_large" and reply["request_id"] == "big"
        await ws.send_json({"type": "story.resume", "story_id": "no-such-story"})
        assert (await ws.receive_json())["code"] == "not_found"
        await ws.send_json({"type": "ping"})
        assert (await ws.receive_json())["type"] == "pong"


async def test_no_token_is_refused(service: StartService, session: aiohttp.ClientSession) -> None:
    svc = await service()
    async with session.post(f"{svc.base}/v1/stories", json={"text": "hi"}) as res:
        assert res.status == 401
        assert (await res.json())["error"]["code"] == "unauthorized"
    async with session.get(f"{svc.base}/v1/stream") as res:
        assert res.status == 401
    try:
        async with session.ws_connect(svc.base.replace("http", "ws", 1) + "/v1/stream"):
            raise AssertionError("the upgrade must be refused")
    except aiohttp.WSServerHandshakeError as exc:
        assert exc.status == 401
    bad = {"Authorization": "Bearer not-a-token"}
    async with session.get(f"{svc.base}/v1/auth/me", headers=bad) as res:
        assert res.status == 401
        assert (await res.json())["error"]["code"] == "unauthorized"


async def test_idempotency_key_returns_the_first_story(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service()
    token = await sign_up(session, svc.base, "tony")
    auth = {"Authorization": f"Bearer {token}"}
    body = {"text": STORY, "idempotency_key": "draft-7"}
    ids = []
    for _ in range(3):
        async with session.post(f"{svc.base}/v1/stories", json=body, headers=auth) as res:
            assert res.status == 202
            ids.append((await res.json())["story_id"])
    assert len(set(ids)) == 1
    outcomes = await outcomes_of(svc, ids[0])
    assert_outcomes(outcomes)
    assert [e["type"] for e in outcomes].count("enhancement.completed") == 1
