"""Progressive narration end to end, on both buses: audio that starts while the rewrite is
still streaming, whole-frame chunks, word timings with exact spans, the kept file, and
the narration outcome."""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from mutagen.mp3 import MP3

from amplify_stream.fakes.edge_tts import FakeEdgeConfig, serve_fake_edge_tts
from amplify_stream.fakes.gemini import FakeGeminiServer
from amplify_stream.speech import mp3
from tests.integration.conftest import Service
from tests.integration.test_pipeline import assert_outcomes, outcomes_of
from tests.support import STORY, assert_story_stream, sign_up, ws_story

StartService = Callable[..., Awaitable[Service]]
StartGemini = Callable[..., Awaitable[FakeGeminiServer]]


def audio_of(events: list[dict[str, Any]]) -> bytes:
    chunks = [e for e in events if e["type"] == "audio.chunk"]
    assert [c["index"] for c in chunks] == list(range(len(chunks)))
    return b"".join(base64.b64decode(c["data"]) for c in chunks)


def assert_narration(events: list[dict[str, Any]], narrated: str) -> dict[str, Any]:
    """The invariants of a finished narration; returns ``audio.completed``."""
    types = [e["type"] for e in events]
    assert types.count("audio.started") == 1
    assert types.index("audio.started") < types.index("audio.chunk")
    started = next(e for e in events if e["type"] == "audio.started")
    assert started["format"] == "audio/mpeg"
    completed = next(e for e in events if e["type"] == "audio.completed")
    audio = audio_of(events)
    assert len(audio) == completed["bytes"]
    assert hashlib.sha256(audio).hexdigest() == completed["sha256"]
    # Valid MP3 whose length is what the service says, within 5 %.
    measured_ms = MP3(io.BytesIO(audio)).info.length * 1000
    assert abs(measured_ms - completed["duration_ms"]) <= 0.05 * measured_ms, (
        measured_ms,
        completed["duration_ms"],
    )
    # Any prefix of the chunks is playable: each chunk is whole frames, back to back.
    for chunk in (e for e in events if e["type"] == "audio.chunk"):
        data = base64.b64decode(chunk["data"])
        spans = [(offset, length) for offset, length, _ in mp3.frames(data)]
        assert spans and spans[0][0] == 0
        assert all(a + n == b for (a, n), (b, _) in itertools.pairwise(spans))
        assert spans[-1][0] + spans[-1][1] == len(data)
    words = [e for e in events if e["type"] == "audio.word"]
    assert len(words) >= len(narrated.split()) // 2
    offsets = [w["offset_ms"] for w in words]
    assert offsets == sorted(offsets), "word offsets never go backwards"
    for word in words:
        assert word["start"] is not None
        assert narrated[word["start"] : word["end"]] == word["text"], word
    assert offsets[-1] <= completed["duration_ms"]
    assert completed["url"] == f"/v1/stories/{events[0]['story_id']}/audio"
    return completed


async def test_first_audio_arrives_before_the_rewrite_completes(
    service: StartService, session: aiohttp.ClientSession, fake_gemini: StartGemini
) -> None:
    # A slow model: the first token after 300 ms, then 20 tokens/s.
    fake = await fake_gemini(first_token_ms=300, tokens_per_s=20)
    svc = await service(
        enhancer_provider="gemini",
        gemini_api_key="test-key",
        gemini_base_url=fake.base_url,
        speech_provider="espeak",
    )
    token = await sign_up(session, svc.base, "octavia")
    events = await ws_story(session, svc.base, token, {"text": STORY}, timeout=60)
    types = [e["type"] for e in events]
    assert types.index("audio.chunk") < types.index("enhancement.completed"), types
    rewrite = assert_story_stream(events, STORY)["text"]
    completed = assert_narration(events, rewrite)
    assert next(e for e in events if e["type"] == "audio.started")["provider"] == "espeak"
    # The whole narration is kept and served.
    auth = {"Authorization": f"Bearer {token}"}
    async with session.get(f"{svc.base}{completed['url']}", headers=auth) as res:
        assert res.status == 200
        assert res.headers["Content-Type"] == "audio/mpeg"
        assert hashlib.sha256(await res.read()).hexdigest() == completed["sha256"]
    outcomes = await outcomes_of(svc, events[0]["story_id"])
    assert_outcomes(outcomes)
    narration = next(e for e in outcomes if e["type"] == "narration.completed")
    assert narration["sha256"] == completed["sha256"]
    assert narration["bytes"] == completed["bytes"]
    assert narration["duration_ms"] == completed["duration_ms"]
    assert narration["chunks"] == types.count("audio.chunk")
    assert narration["words"] == types.count("audio.word")
    assert narration["provider"] == "espeak"
    assert 0 < narration["timings"]["first_audio_ms"] < narration["timings"]["total_ms"]


async def test_without_rewrite_the_submitted_text_is_narrated(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service(speech_provider="espeak")
    token = await sign_up(session, svc.base, "ursula")
    events = await ws_story(session, svc.base, token, {"text": STORY, "rewrite": False})
    assert not any(e["type"] == "enhancement.delta" for e in events)
    assert_narration(events, STORY)
    assert events[-1]["type"] == "story.completed" and events[-1]["status"] == "completed"


@pytest.mark.parametrize("bus_kind", ["memory"], indirect=True)
async def test_audio_false_skips_narration(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service(speech_provider="espeak")
    token = await sign_up(session, svc.base, "iain")
    events = await ws_story(session, svc.base, token, {"text": STORY, "audio": False})
    assert not any(e["type"].startswith("audio.") for e in events)
    assert_story_stream(events, STORY)
    outcomes = await outcomes_of(svc, events[0]["story_id"])
    assert_outcomes(outcomes)
    assert not any(e["type"].startswith("narration.") for e in outcomes)
    auth = {"Authorization": f"Bearer {token}"}
    url = f"{svc.base}/v1/stories/{events[0]['story_id']}/audio"
    async with session.get(url, headers=auth) as res:
        assert res.status == 404
        assert (await res.json())["error"]["code"] == "not_found"


@pytest.mark.parametrize("bus_kind", ["memory"], indirect=True)
async def test_edge_voice_through_the_fake_service(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    async with serve_fake_edge_tts(FakeEdgeConfig(port=0)) as fake:
        svc = await service(speech_provider="auto", edge_tts_url=fake.url)
        token = await sign_up(session, svc.base, "ada")
        events = await ws_story(session, svc.base, token, {"text": STORY, "rewrite": False})
    started = next(e for e in events if e["type"] == "audio.started")
    assert (started["provider"], started["voice"]) == ("edge", "en-US-AriaNeural")
    assert_narration(events, STORY)


@pytest.mark.parametrize("bus_kind", ["memory"], indirect=True)
async def test_speech_failure_still_completes_the_story(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    async with serve_fake_edge_tts(FakeEdgeConfig(port=0, fault="rate_limited")) as fake:
        svc = await service(
            speech_provider="edge",
            edge_tts_url=fake.url,
            tts_retry_attempts=2,
            tts_retry_initial_delay_s=0.05,
        )
        token = await sign_up(session, svc.base, "ada")
        events = await ws_story(session, svc.base, token, {"text": STORY}, timeout=30)
    errors = [e for e in events if e["type"] == "error"]
    assert [e["code"] for e in errors] == ["tts_unavailable"]
    assert events[-1]["type"] == "story.completed" and events[-1]["status"] == "completed"
    assert not any(e["type"] == "audio.completed" for e in events)
    assert_story_stream(events, STORY)  # the text is all there
    outcomes = await outcomes_of(svc, events[0]["story_id"])
    assert_outcomes(outcomes)
    failed = next(e for e in outcomes if e["type"] == "narration.failed")
    assert failed["error"]["code"] == "tts_unavailable"
