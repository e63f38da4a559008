"""Live documents with the ``gemini`` provider through the whole service, on both buses:
the real google-genai SDK against the fake Gemini writing at a token rate. Each changed
line is one streamed call; its suggestions reach the writer before the pass ends; an
edit during a pass cancels it, and its HTTP stream is closed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp

from amplify_stream.fakes.gemini import FakeGeminiServer
from tests.integration.conftest import Service
from tests.live_documents import check_marks, writer
from tests.support import sign_up, wait_until

StartService = Callable[..., Awaitable[Service]]
StartGemini = Callable[..., Awaitable[FakeGeminiServer]]

LINE = 'Mara was very angry at the wall. "We should go," she said quietly. Tom felt very cold.'


async def test_an_edit_during_a_gemini_pass_closes_its_stream(
    service: StartService, fake_gemini: StartGemini, session: aiohttp.ClientSession
) -> None:
    fake = await fake_gemini(first_token_ms=0, tokens_per_s=60)
    svc = await service(
        enhancer_provider="gemini",
        gemini_api_key="test-key",
        gemini_base_url=fake.base_url,
        doc_idle_ms=100,
    )
    token = await sign_up(session, svc.base, "ada")
    async with writer(session, svc.base, token) as w:
        doc = await w.open(f"The harbour.\n{LINE}")
        # The first pass: one call per non-blank line, streamed; the first suggestion is
        # heard while a call is still open.
        await w.until(lambda: w.of("doc.suggestion"), "a first suggestion", timeout=60)
        assert fake.record.open_streams >= 1
        open_calls = [c for c in fake.record.calls if c.state == "open"]
        # An edit now supersedes the pass: its open calls are closed within a second.
        await w.type("!", at=len("The harbour."))
        await wait_until(
            lambda: all(c.state == "disconnected" for c in open_calls),
            "the superseded pass's streams closed",
            timeout=2,
        )
        # The next pass reads both lines again: the edited one, and the long one, whose
        # answer the cancelled pass never finished (what it told stays live meanwhile).
        doc = await w.settled(timeout=90)
        check_marks(doc)
        analyzed = w.of("doc.analyzed")
        assert [a["version"] for a in analyzed] == [1] and analyzed[0]["reanalyzed"] == 2
        quotes = {m.event["quote"] for m in doc.marks.values()}
        assert quotes and all(q in doc.text for q in quotes)
