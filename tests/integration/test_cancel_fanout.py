"""Cancel over the socket and over HTTP, and many sockets watching one story."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from amplify_stream.fakes.gemini import FakeGeminiServer
from tests.integration.conftest import Service
from tests.integration.test_pipeline import assert_outcomes, outcomes_of
from tests.support import STORY, sign_up, wait_until

StartService = Callable[..., Awaitable[Service]]
StartGemini = Callable[..., Awaitable[FakeGeminiServer]]


async def slow_gemini_service(
    service: StartService, fake_gemini: StartGemini
) -> tuple[Service, FakeGeminiServer]:
    fake = await fake_gemini(first_token_ms=100, tokens_per_s=10)
    svc = await service(
        enhancer_provider="gemini", gemini_api_key="test-key", gemini_base_url=fake.base_url
    )
    return svc, fake


async def receive_until(ws: aiohttp.ClientWebSocketResponse, kind: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(30):
        while not events or events[-1]["type"] != kind:
            events.append(json.loads((await ws.receive()).data))
    return events


async def test_cancel_over_the_socket(
    service: StartService, session: aiohttp.ClientSession, fake_gemini: StartGemini
) -> None:
    svc, fake = await slow_gemini_service(service, fake_gemini)
    token = await sign_up(session, svc.base, "ada")
    url = svc.base.replace("http", "ws", 1) + "/v1/stream"
    async with session.ws_connect(url, headers={"Authorization": f"Bearer {token}"}) as ws:
        await ws.send_json({"type": "story.submit", "text": STORY})
        events = await receive_until(ws, "enhancement.delta")
        story_id = events[0]["story_id"]
        asked = time.monotonic()
        await ws.send_json({"type": "story.cancel", "story_id": story_id})
        events += await receive_until(ws, "story.completed")
        took = time.monotonic() - asked
    assert events[-1]["status"] == "cancelled"
    assert took < 1.0, took
    await wait_until(
        lambda: fake.record.open_streams == 0, "the provider's stream to be closed", timeout=5
    )
    outcomes = await outcomes_of(svc, story_id)
    assert_outcomes(outcomes, "cancelled")


async def test_cancel_over_http_while_narrating(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service(speech_provider="espeak", local_piece_delay_ms=30)
    token = await sign_up(session, svc.base, "ada")
    auth = {"Authorization": f"Bearer {token}"}
    url = svc.base.replace("http", "ws", 1) + "/v1/stream"
    async with session.ws_connect(url, headers=auth) as ws:
        await ws.send_json({"type": "story.submit", "text": STORY * 3})
        events = await receive_until(ws, "audio.chunk")
        story_id = events[0]["story_id"]
        async with session.post(f"{svc.base}/v1/stories/{story_id}/cancel", headers=auth) as res:
            assert res.status == 202
        events += await receive_until(ws, "story.completed")
    assert events[-1]["status"] == "cancelled"
    assert not any(e["type"] == "audio.completed" for e in events)
    assert_outcomes(await outcomes_of(svc, story_id), "cancelled")


async def test_many_sockets_watch_one_story(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service(speech_provider="espeak", local_piece_delay_ms=10)
    token = await sign_up(session, svc.base, "ada")
    auth = {"Authorization": f"Bearer {token}"}
    url = svc.base.replace("http", "ws", 1) + "/v1/stream"
    async with session.ws_connect(url, headers=auth) as submitter:
        await submitter.send_json({"type": "story.submit", "text": STORY})
        first = json.loads((await submitter.receive()).data)
        story_id = first["story_id"]

        async def watch() -> list[dict[str, Any]]:
            async with session.ws_connect(url, headers=auth) as ws:
                await ws.send_json({"type": "story.resume", "story_id": story_id})
                return await receive_until(ws, "story.completed")

        watchers = await asyncio.gather(*(watch() for _ in range(8)))
        own = await receive_until(submitter, "story.completed")
    assert all(w == own for w in watchers)
    assert own[-1]["status"] == "completed"
