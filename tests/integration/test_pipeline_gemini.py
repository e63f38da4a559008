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
