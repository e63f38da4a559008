"""Suggestions reach the client as the provider finds them, interleaved with the rewrite,
not in one burst at its end: the real google-genai SDK against the fake Gemini writing at
a token rate, through the whole service, on both buses."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from amplify_stream.events import SuggestionFields
from amplify_stream.fakes.gemini import FakeCall, FakeGeminiServer
from amplify_stream.providers.local.rules import RULES
from tests.integration.conftest import Service
from tests.integration.test_pipeline import outcomes_of
from tests.support import STORY, sign_up

StartService = Callable[..., Awaitable[Service]]
StartGemini = Callable[..., Awaitable[FakeGeminiServer]]

# About 320 words: 15 suggestions of the fake's rules, spread through the story.
LONG_STORY = " ".join([STORY] * 5)


@dataclass
class Heard:
    """A story's events as the client received them, each with its arrival time."""

    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)

    def of(self, kind: str) -> list[tuple[float, dict[str, Any]]]:
        return [(at, e) for at, e in self.events if e["type"] == kind]

    @property
    def story_id(self) -> str:
        return str(self.events[0][1]["story_id"])


async def submit(svc: Service, session: aiohttp.ClientSession, **options: Any) -> Heard:
    token = await sign_up(session, svc.base, "ada")
    url = svc.base.replace("http", "ws", 1) + "/v1/stream"
    heard = Heard()
    async with session.ws_connect(url, headers={"Authorization": f"Bearer {token}"}) as ws:
        await ws.send_json({"type": "story.submit", "text": LONG_STORY, "audio": False} | options)
        async with asyncio.timeout(120):
            while not heard.events or heard.events[-1][1]["type"] != "story.completed":
                msg = await ws.receive()
                heard.events.append((time.monotonic(), json.loads(msg.data)))
    return heard


async def gemini_service(
    service: StartService, fake_gemini: StartGemini, **fake: Any
) -> tuple[Service, FakeGeminiServer]:
    server = await fake_gemini(**fake)
    svc = await service(
        enhancer_provider="gemini", gemini_api_key="test-key", gemini_base_url=server.base_url
    )
    return svc, server


def analysis_call(server: FakeGeminiServer) -> FakeCall:
    (call,) = [
        c
        for c in server.record.calls
        if (c.body.get("generationConfig") or {}).get("responseMimeType") == "application/json"
    ]
    return call


async def check_completed_list(svc: Service, heard: Heard) -> None:
    """Every span slices its quote, and the outcome's list is what streamed."""
    fields = set(SuggestionFields.model_fields)
    streamed = [{k: v for k, v in e.items() if k in fields} for _, e in heard.of("suggestion")]
    for s in streamed:
        assert LONG_STORY[s["start"] : s["end"]] == s["quote"], s
    # Each names its rule: the catalogue's where the model named one of its focus, else
    # the model's own (the fake leaves the intensifier's out).
    rules = {s["rule"] for s in streamed}
    assert {"dialogue.adverb_tag", "model.setting"} <= rules, rules
    assert all(r in RULES or r.startswith("model.") for r in rules), rules
    # The story holds its words five times: the same note again marks the next of them.
    placed = [(s["rule"], s["message"], s["start"]) for s in streamed]
    assert len(set(placed)) == len(placed), placed
    outcomes = await outcomes_of(svc, heard.story_id)
    (enhanced,) = [o for o in outcomes if o["type"] == "enhancement.completed"]
    assert enhanced["suggestions"] == streamed
    ((_, completed),) = heard.of("enhancement.completed")
    assert completed["suggestions"] == len(streamed)


async def test_suggestions_arrive_while_the_rewrite_streams(
    service: StartService, session: aiohttp.ClientSession, fake_gemini: StartGemini
) -> None:
    svc, server = await gemini_service(service, fake_gemini, first_token_ms=300, tokens_per_s=20)
    heard = await submit(svc, session)
    suggestions = heard.of("suggestion")
    assert len(suggestions) >= 10, len(suggestions)
    # The first one before a fifth of the rewrite had reached the client.
    first_at = suggestions[0][0]
    rewrite = "".join(e["text"] for _, e in heard.of("enhancement.delta"))
    before = "".join(e["text"] for at, e in heard.of("enhancement.delta") if at < first_at)
    assert len(before) < len(rewrite) / 5, (len(before), len(rewrite))
    # Spread over the analysis's writing, not one burst.
    call = analysis_call(server)
    assert call.ended_at is not None
    writing = call.ended_at - call.started_at
    spread = suggestions[-1][0] - first_at
    assert spread >= writing / 2, (spread, writing)
    await check_completed_list(svc, heard)


async def test_without_rewrite_suggestions_stream_the_same_way(
    service: StartService, session: aiohttp.ClientSession, fake_gemini: StartGemini
) -> None:
    svc, server = await gemini_service(service, fake_gemini, first_token_ms=300, tokens_per_s=40)
    heard = await submit(svc, session, rewrite=False)
    assert not heard.of("enhancement.delta")
    suggestions = heard.of("suggestion")
    call = analysis_call(server)
    assert call.ended_at is not None
    writing = call.ended_at - call.started_at
    assert suggestions[0][0] - heard.events[0][0] < writing / 4
    assert suggestions[-1][0] - suggestions[0][0] >= writing / 2
    await check_completed_list(svc, heard)


async def test_a_malformed_suggestion_is_left_out_and_the_rest_arrive(
    service: StartService, session: aiohttp.ClientSession, fake_gemini: StartGemini
) -> None:
    svc, _ = await gemini_service(service, fake_gemini, tokens_per_s=200, fault="bad_object")
    heard = await submit(svc, session)
    ((_, done),) = heard.of("story.completed")
    assert done["status"] == "completed"
    # The fake's 15 suggestions and one that breaks the schema: the 15 arrive.
    assert len(heard.of("suggestion")) == 15
    assert all(e["focus"] != "pacing" for _, e in heard.of("suggestion"))
    assert len(heard.of("insight")) == 4
    await check_completed_list(svc, heard)
    async with session.get(f"{svc.base}/metrics") as res:
        metrics = await res.text()
    assert 'amplify_findings_skipped_total{kind="suggestion",provider="gemini"} 1.0' in metrics
