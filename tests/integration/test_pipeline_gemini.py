"""The pipeline with the gemini provider, through the real google-genai SDK against the
fake Gemini server: a normal stream and each fault, as the client and analytics see them."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from amplify_stream.fakes.gemini import FakeGeminiServer
from tests.integration.conftest import Service
from tests.integration.test_pipeline import assert_outcomes, outcomes_of
from tests.support import STORY, assert_story_stream, sign_up, wait_until, ws_story

StartService = Callable[..., Awaitable[Service]]


async def gemini_service(
    service: StartService, fake: FakeGeminiServer, **overrides: Any
) -> Service:
    return await service(
        enhancer_provider="gemini",
        gemini_api_key="test-key",
        gemini_base_url=fake.base_url,
        gemini_retry_attempts=3,
        gemini_retry_initial_delay_s=0.05,
        gemini_retry_max_delay_s=0.2,
        gemini_idle_timeout_s=1.5,
        **overrides,
    )


async def run_story(svc: Service, session: aiohttp.ClientSession) -> list[dict[str, Any]]:
    token = await sign_up(session, svc.base, "writer")
    return await ws_story(session, svc.base, token, {"text": STORY}, timeout=30)


def failure(events: list[dict[str, Any]]) -> tuple[str, str]:
    done = events[-1]
    assert done["type"] == "story.completed"
    errors = [e for e in events if e["type"] == "error"]
    assert len(errors) == 1, errors
    assert done["error"]["code"] == errors[0]["code"]
    return done["status"], errors[0]["code"]


async def test_normal_stream(
    service: StartService, session: aiohttp.ClientSession, fake_gemini: Any
) -> None:
    fake = await fake_gemini()
    svc = await gemini_service(service, fake)
    events = await run_story(svc, session)
    started = next(e for e in events if e["type"] == "enhancement.started")
    assert started["provider"] == "gemini"
    completed = assert_story_stream(events, STORY)
    assert completed["usage"]["output_tokens"] > 0
    assert_outcomes(await outcomes_of(svc, events[0]["story_id"]))


@pytest.mark.parametrize("bus_kind", ["memory"], indirect=True)
async def test_429_then_success(
    service: StartService, session: aiohttp.ClientSession, fake_gemini: Any
) -> None:
    fake = await fake_gemini(fault="status", fault_status=429, fault_count=2)
    svc = await gemini_service(service, fake)
    events = await run_story(svc, session)
    assert_story_stream(events, STORY)
    # The fake refused the first two requests; the SDK retried them, then both calls ran.
    statuses = [c.status for c in fake.record.calls]
    assert statuses.count(429) == 2 and statuses.count(200) == 2, statuses


@pytest.mark.parametrize("bus_kind", ["memory"], indirect=True)
async def test_503_until_retries_run_out(
    service: StartService, session: aiohttp.ClientSession, fake_gemini: Any
) -> None:
    fake = await fake_gemini(fault="status", fault_status=503)
    svc = await gemini_service(service, fake)
    events = await run_story(svc, session)
    assert failure(events) == ("failed", "provider_unavailable")
    outcomes = await outcomes_of(svc, events[0]["story_id"])
    assert_outcomes(outcomes, "failed")
    failed = next(e for e in outcomes if e["type"] == "enhancement.failed")
    assert failed["error"]["code"] == "provider_unavailable"


@pytest.mark.parametrize("bus_kind", ["memory"], indirect=True)
async def test_error_mid_stream(
    service: StartService, session: aiohttp.ClientSession, fake_gemini: Any
) -> None:
    fake = await fake_gemini(fault="midstream")
    svc = await gemini_service(service, fake)
    events = await run_story(svc, session)
    assert any(e["type"] == "enhancement.delta" for e in events)
    assert failure(events) == ("failed", "provider_error")


@pytest.mark.parametrize("bus_kind", ["memory"], indirect=True)
async def test_stall_is_bounded(
    service: StartService, session: aiohttp.ClientSession, fake_gemini: Any
) -> None:
    fake = await fake_gemini(fault="stall")
    svc = await gemini_service(service, fake)
    began = time.monotonic()
    events = await run_story(svc, session)
    assert time.monotonic() - began < 10
    assert failure(events) == ("failed", "provider_error")
    await wait_until(
        lambda: fake.record.open_streams == 0, "the stalled stream to be closed", timeout=5
    )


async def test_a_rule_turned_off_never_fires_on_gemini_either(
    service: StartService, session: aiohttp.ClientSession, fake_gemini: Any
) -> None:
    """The writer's say on the gemini provider: the user's rules off (a catalogue rule
    the model named, and the model's own ``model.*``) and vouched words never reach the
    story's suggestions; another user's story still has them."""
    fake = await fake_gemini()
    svc = await gemini_service(service, fake)
    text = (
        '"Come here," Tom said softly. Suddenly the door opened. Mara felt very angry '
        "and the night was very dark."
    )
    mine = await sign_up(session, svc.base, "writer")
    theirs = await sign_up(session, svc.base, "other")
    body = {"rules_off": ["dialogue.adverb_tag", "model.plot"], "words": ["dark"]}
    async with session.put(
        f"{svc.base}/v1/me/preferences", json=body, headers={"Authorization": f"Bearer {mine}"}
    ) as res:
        assert res.status == 200, await res.text()

    def suggestions(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [e for e in events if e["type"] == "suggestion"]

    story = {"text": text, "rewrite": False, "audio": False}
    their_events = await ws_story(session, svc.base, theirs, story, timeout=30)
    heard = suggestions(their_events)
    assert {"dialogue.adverb_tag", "model.plot"} <= {s["rule"] for s in heard}
    assert any("dark" in s["quote"] for s in heard)
    my_events = await ws_story(session, svc.base, mine, story, timeout=30)
    kept = suggestions(my_events)
    assert kept, "the other rules still fire"
    assert not {"dialogue.adverb_tag", "model.plot"} & {s["rule"] for s in kept}
    assert not any("dark" in s["quote"].split() for s in kept)
