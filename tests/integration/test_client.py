"""The Python client against the whole service, on both buses: submit, resume, cancel,
errors, and automatic resume when the connection drops mid-story."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from yarl import URL

from amplify_stream.client import AmplifyClient, ClientError, StoryStream
from amplify_stream.gateway import keys
from tests.integration.conftest import Service
from tests.proxy import cutting_proxy
from tests.support import STORY, assert_story_stream

StartService = Callable[..., Awaitable[Service]]
PASSWORD = "correct horse battery"


@pytest.fixture
async def client_for() -> AsyncIterator[Callable[..., Awaitable[AmplifyClient]]]:
    clients: list[AmplifyClient] = []

    async def make(base: str, username: str = "ada", **options: Any) -> AmplifyClient:
        client = AmplifyClient(base, **options)
        clients.append(client)
        await client.register(username, PASSWORD)
        await client.login(username, PASSWORD)
        return client

    yield make
    for client in clients:
        await client.close()


async def collect(
    stream: StoryStream, on_event: Callable[[dict[str, Any]], Awaitable[None]] | None = None
) -> list[dict[str, Any]]:
    events = []
    async with asyncio.timeout(60), stream:
        async for event in stream:
            events.append(event)
            if on_event is not None:
                await on_event(event)
    return events


async def settled_story(client: AmplifyClient, story_id: str) -> dict[str, Any]:
    """``GET /v1/stories/{id}`` once the projector has folded the outcome in."""
    async with asyncio.timeout(30):
        while True:
            story = await client.get_story(story_id)
            if story["status"] in ("completed", "failed", "cancelled"):
                return story
            await asyncio.sleep(0.1)


def assert_exactly_once(events: list[dict[str, Any]]) -> None:
    cursors = [e["cursor"] for e in events if e.get("cursor")]
    assert len(cursors) == len(set(cursors)), "an event was delivered twice"


async def test_submit_streams_the_story(
    service: StartService, client_for: Callable[..., Awaitable[AmplifyClient]]
) -> None:
    svc = await service()
    client = await client_for(svc.base)
    stream = client.submit(STORY, title="Lighthouse", request_id="r1")
    events = await collect(stream)
    completed = assert_story_stream(events, STORY)
    assert events[0]["request_id"] == "r1"
    assert stream.story_id == events[0]["story_id"]
    assert stream.text == completed["text"]
    assert stream.cursor == events[-1]["cursor"]
    assert stream.reconnects == 0
    # The kept narration is the audio that streamed.
    audio = await client.download_audio(events[0]["story_id"])
    done = next(e for e in events if e["type"] == "audio.completed")
    assert hashlib.sha256(audio).hexdigest() == done["sha256"]
    assert len(audio) == done["bytes"]
    story = await settled_story(client, events[0]["story_id"])
    assert story["status"] == "completed"
    assert story["title"] == "Lighthouse"
    assert story["enhanced_text"] == completed["text"]
    assert story["audio"]["sha256"] == done["sha256"]


async def test_resume_after_a_cursor_and_from_the_start(
    service: StartService, client_for: Callable[..., Awaitable[AmplifyClient]]
) -> None:
    svc = await service()
    client = await client_for(svc.base)
    events = await collect(client.submit(STORY, audio=False))
    story_id = events[0]["story_id"]
    later = await collect(client.resume(story_id, events[4]["cursor"]))
    assert later == events[5:]
    everything = await collect(client.resume(story_id))
    assert everything == events[1:]  # story.accepted answers a submit only


async def test_cancel_ends_the_stream_cancelled(
    service: StartService, client_for: Callable[..., Awaitable[AmplifyClient]]
) -> None:
    svc = await service(local_piece_delay_ms=40)
    client = await client_for(svc.base)
    cancelled = False

    async def cancel_on_first_delta(event: dict[str, Any]) -> None:
        nonlocal cancelled
        if event["type"] == "enhancement.delta" and not cancelled:
            cancelled = True
            await client.cancel(event["story_id"])

    events = await collect(client.submit(STORY * 3), cancel_on_first_delta)
    assert events[-1]["type"] == "story.completed"
    assert events[-1]["status"] == "cancelled"


async def test_errors_carry_the_contract_code(
    service: StartService, client_for: Callable[..., Awaitable[AmplifyClient]]
) -> None:
    svc = await service()
    client = await client_for(svc.base)
    with pytest.raises(ClientError) as caught:
        await client.login("ada", "wrong password!")
    assert (caught.value.code, caught.value.status) == ("unauthorized", 401)
    with pytest.raises(ClientError) as caught:
        await collect(client.resume("no-such-story"))
    assert caught.value.code == "not_found"
    with pytest.raises(ClientError) as caught:
        await collect(client.submit("   "))
    # Over the socket, a field that breaks the story rules is an invalid message.
    assert caught.value.code == "invalid_message"
    assert caught.value.message.startswith("text:")
    with pytest.raises(ClientError) as caught:
        await client.download_audio("no-such-story")
    assert (caught.value.code, caught.value.status) == ("not_found", 404)
    anonymous = AmplifyClient(svc.base)
    try:
        with pytest.raises(ClientError) as caught:
            await collect(anonymous.submit(STORY))
        assert caught.value.code == "unauthorized"
    finally:
        await anonymous.close()


async def test_resumes_by_itself_when_the_connection_drops(
    service: StartService, client_for: Callable[..., Awaitable[AmplifyClient]]
) -> None:
    # Slow pieces, so the connection drops in the middle of the rewrite.
    svc = await service(local_piece_delay_ms=15)
    url = URL(svc.base)
    assert url.host is not None and url.port is not None
    async with cutting_proxy(url.host, url.port) as (proxy, port):
        client = await client_for(f"http://127.0.0.1:{port}", backoff_s=0.05)
        stream = client.submit(STORY)
        deltas = 0

        async def cut_twice(event: dict[str, Any]) -> None:
            nonlocal deltas
            if event["type"] == "enhancement.delta":
                deltas += 1
                if deltas in (3, 12):
                    proxy.cut()

        events = await collect(stream, cut_twice)
        story = await settled_story(client, events[0]["story_id"])
    assert stream.reconnects >= 2
    assert_exactly_once(events)
    completed = assert_story_stream(events, STORY)
    assert stream.text == completed["text"]
    assert story["enhanced_text"] == stream.text
    chunks = [e["index"] for e in events if e["type"] == "audio.chunk"]
    assert chunks == list(range(len(chunks)))


async def test_resubmits_when_the_acceptance_is_lost(
    service: StartService, client_for: Callable[..., Awaitable[AmplifyClient]]
) -> None:
    svc = await service()
    url = URL(svc.base)
    assert url.host is not None and url.port is not None
    async with cutting_proxy(url.host, url.port) as (proxy, port):
        client = await client_for(f"http://127.0.0.1:{port}", backoff_s=0.05)
        # The socket of the submit gets the upgrade, then dies before story.accepted:
        # the story exists, the client does not know it. The idempotency key finds it.
        proxy.cut_after_head = 1
        stream = client.submit(STORY, audio=False)
        events = await collect(stream)
    assert stream.reconnects == 1
    assert_story_stream(events, STORY)
    assert_exactly_once(events)


async def test_resumes_when_the_gateway_closes_the_socket(
    service: StartService, client_for: Callable[..., Awaitable[AmplifyClient]]
) -> None:
    svc = await service(local_piece_delay_ms=15)
    client = await client_for(svc.base, backoff_s=0.05)
    stream = client.submit(STORY, audio=False)
    closed = False

    async def going_away(event: dict[str, Any]) -> None:
        nonlocal closed
        if event["type"] == "enhancement.delta" and not closed:
            closed = True
            await svc.app[keys.SOCKETS].close_all()  # as a gateway shutting down does

    events = await collect(stream, going_away)
    assert stream.reconnects == 1
    assert_exactly_once(events)
    completed = assert_story_stream(events, STORY)
    assert stream.text == completed["text"]
