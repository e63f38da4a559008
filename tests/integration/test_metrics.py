"""The production metrics at /metrics, after a real story."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import Service
from tests.live_documents import writer
from tests.support import STORY, sign_up, ws_story

StartService = Callable[..., Awaitable[Service]]


@pytest.mark.parametrize("bus_kind", ["memory"], indirect=True)
async def test_metrics_after_a_story(service: StartService, session: aiohttp.ClientSession) -> None:
    svc = await service()
    token = await sign_up(session, svc.base, "ada")
    await ws_story(session, svc.base, token, {"text": STORY})
    async with session.get(f"{svc.base}/metrics") as res:
        assert res.status == 200
        assert res.headers["Content-Type"].startswith("text/plain")
        text = await res.text()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("amplify_stories_total", (("status", "completed"),))] == 1
    assert samples[("amplify_first_token_ms_count", ())] == 1
    assert samples[("amplify_first_suggestion_ms_count", ())] == 1
    assert samples[("amplify_first_audio_ms_count", ())] == 1
    assert samples[("amplify_relay_latency_ms_count", ())] > 10
    assert samples[("amplify_open_sockets", ())] == 0
    lags = [v for (name, _), v in samples.items() if name == "amplify_consumer_lag"]
    assert all(v >= 0 for v in lags)


@pytest.mark.parametrize("bus_kind", ["memory"], indirect=True)
async def test_metrics_of_live_documents(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service(doc_idle_ms=100)
    token = await sign_up(session, svc.base, "ada")
    async with writer(session, svc.base, token) as w:
        await w.open("\n".join(f"Line {i} of the harbour." for i in range(10)))
        await w.settled()
        await w.type(" Mara was very angry.", at=len("Line 0 of the harbour."))
        await w.settled()
        # The same paragraph again elsewhere: read from the cache, not analyzed anew.
        await w.open("Line 3 of the harbour.")
        await w.settled()
    async with session.get(f"{svc.base}/metrics") as res:
        text = await res.text()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    typed = len(" Mara was very angry.")
    assert samples[("amplify_doc_edits_total", (("result", "applied"),))] == typed
    assert samples[("amplify_doc_ack_latency_ms_count", ())] == typed
    # Three passes: the first document twice (all ten lines, then the one typed into),
    # the second once.
    assert samples[("amplify_doc_analysis_ms_count", ())] == 3
    assert samples[("amplify_doc_paragraphs_reread_sum", ())] == 10 + 1 + 1
    assert 0 < samples[("amplify_doc_paragraph_cache_hit_ratio", ())] <= 1
