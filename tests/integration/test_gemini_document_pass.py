"""GeminiAnalyzer (a live document's pass) through the real google-genai SDK against the
fake Gemini server: one call per stale paragraph, suggestions emitted while their stream
is still open, cancellation that closes the connection and leaves the document
consistent, the per-user cap on calls in flight (per owner, or once for all in Redis),
misquotes dropped."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AsyncExitStack
from typing import Any

import pytest

from amplify_stream.documents import create_document_analyzer
from amplify_stream.documents.analyzers import PassFindings
from amplify_stream.documents.call_slots import LocalCallSlots
from amplify_stream.documents.gemini_pass import GeminiAnalyzer
from amplify_stream.documents.state import DocumentState, LiveSuggestion
from amplify_stream.errors import ProviderError
from amplify_stream.fakes import gemini_model
from amplify_stream.fakes.gemini import (
    FakeCall,
    FakeGeminiConfig,
    FakeGeminiServer,
    serve_fake_gemini,
)
from amplify_stream.fakes.gemini_wire import Answer
from amplify_stream.text.edits import Change
from tests.integration.test_gemini_provider import eventually, make_settings
from tests.unit.test_document_state import at, check_slices, spans

pytestmark = [
    pytest.mark.timeout(30),
    # google-genai subclasses aiohttp.ClientSession, which aiohttp 3.14 frowns upon.
    pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning"),
]

# Each line gives the fake's rules something to find.
LINES = [
    "Mara was very angry at the harbour wall.",
    '"Go," she said softly, and the gulls went quiet.',
    "Suddenly the rain came down on the very old boats.",
]
Start = Callable[..., Awaitable[tuple[FakeGeminiServer, GeminiAnalyzer]]]


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """Start a fake and an analyzer pointed at it; both closed at the end."""
    async with AsyncExitStack() as stack:

        async def _start(
            config: FakeGeminiConfig | None = None, **overrides: Any
        ) -> tuple[FakeGeminiServer, GeminiAnalyzer]:
            config = config or FakeGeminiConfig(port=0, first_token_ms=5, tokens_per_s=4000)
            server = await stack.enter_async_context(serve_fake_gemini(config))
            settings = make_settings(server.base_url, **overrides)
            slots = LocalCallSlots(settings.doc_gemini_calls_per_user)
            analyzer = GeminiAnalyzer(settings, slots=slots)
            stack.push_async_callback(analyzer.aclose)
            return server, analyzer

        yield _start


async def run_pass(analyzer: GeminiAnalyzer, doc: DocumentState) -> tuple[PassFindings, list[str]]:
    """A pass as the owner runs it; with the ids it emitted, in order."""
    told: list[str] = []
    found = await analyzer.analyze(doc, lambda s: told.append(s.id))
    return found, told


def prompt_of(call: FakeCall) -> str:
    return str(call.body["contents"][0]["parts"][0]["text"])


def peak(calls: Iterable[FakeCall]) -> int:
    """The most calls the fake had open at one moment (an end before a start at a tie)."""
    moments = []
    for c in calls:
        assert c.ended_at is not None
        moments += [(c.started_at, 1), (c.ended_at, -1)]
    most = running = 0
    for _, step in sorted(moments):
        running += step
        most = max(most, running)
    return most


async def fresh_spans(analyzer: GeminiAnalyzer, text: str) -> list[tuple[str, int, int]]:
    fresh = DocumentState("fresh", "u-fresh", text)
    await analyzer.analyze(fresh, lambda _: None)
    return spans(fresh)


# ------------------------------------------------------------------ what a pass asks


async def test_one_stale_paragraph_of_three_is_one_call_with_the_document_as_context(
    start: Start,
) -> None:
    server, analyzer = await start()
    doc = DocumentState("d1", "u1", "\n".join(LINES))
    first, told = await run_pass(analyzer, doc)
    assert server.record.requests == 3 and first.result.reanalyzed == 3
    # Every paragraph suggestion went out as it was found: the result adds none of them.
    assert first.result.added == [] and len(told) == len(doc.live) >= 5
    assert [i.focus for i in first.insights] == list(doc.focus)  # local, no extra call
    before = dict(doc.live)

    quiet = at(doc, "went quiet")
    doc.edit(1, [Change(quiet, quiet + len("went quiet"), "were very loud")])
    assert doc.stale() == [1]
    second, told = await run_pass(analyzer, doc)

    assert server.record.requests == 4
    prompt = prompt_of(server.record.calls[-1])
    assert f"<document>\n{doc.text}\n</document>" in prompt  # the whole text as context
    assert prompt.endswith(f"<paragraph>\n{doc.paragraphs[1]}\n</paragraph>")
    assert second.result.reanalyzed == 1 and second.result.retracted == []
    # Found again: same ids, not told again; the new intensifier told at once.
    assert [doc.live[i].quote for i in told] == ["very loud"]
    assert set(before) < set(doc.live)
    assert doc.stale() == [] and doc.analyzed_version == 1
    check_slices(doc)
    assert spans(doc) == await fresh_spans(analyzer, doc.text)


async def test_blank_lines_are_read_without_a_call(start: Start) -> None:
    server, analyzer = await start()
    doc = DocumentState("d1", "u1", f"{LINES[0]}\n\n  \n{LINES[2]}")
    found, _ = await run_pass(analyzer, doc)
    assert server.record.requests == 2
    assert found.result.reanalyzed == 4 and doc.stale() == []


# ------------------------------------------------------------------ streaming


async def test_each_suggestion_is_emitted_while_its_stream_is_still_open(start: Start) -> None:
    # Paced: one token every 10 ms, so the answer takes about a second to write.
    server, analyzer = await start(FakeGeminiConfig(port=0, first_token_ms=0, tokens_per_s=100))
    doc = DocumentState("d1", "u1", f"{LINES[0]} {LINES[2]}")
    emitted: list[tuple[float, LiveSuggestion, FakeCall]] = []

    def emit(s: LiveSuggestion) -> None:
        (call,) = server.record.calls
        emitted.append((time.time(), s, dataclasses.replace(call)))  # as it is now

    found = await analyzer.analyze(doc, emit)

    (call,) = server.record.calls
    assert call.state == "completed" and call.ended_at is not None
    assert len(emitted) == len(doc.live) == 4 and found.result.added == []
    # The chunk that closes each suggestion's object (the fake streams a token a chunk;
    # no quote or message of its answer holds a brace).
    tokens = Answer.build(call.body, call.model, 1).tokens
    closing = [n for n, token in enumerate(tokens, start=1) for _ in range(token.count("}"))]
    # Each was told once its closing chunk was out, not later than a few chunks after;
    # all but the last (whose brace shares the answer's last chunk) mid-stream, the
    # first well before the end.
    for (_, _, seen), closes in zip(emitted, closing, strict=False):
        assert closes <= seen.chunks_sent < closes + 5
    assert all(seen.state == "open" for _, _, seen in emitted[:-1])
    assert closing[3] == len(tokens) == call.chunks_sent
    assert emitted[0][0] < call.ended_at - 0.3


async def test_cancelling_mid_stream_closes_the_connection_and_the_next_pass_reconciles(
    start: Start,
) -> None:
    server, analyzer = await start(FakeGeminiConfig(port=0, first_token_ms=0, tokens_per_s=100))
    doc = DocumentState("d1", "u1", f"{LINES[0]} {LINES[2]}\n{LINES[1]}")
    told: list[LiveSuggestion] = []
    first_told = asyncio.Event()

    def emit(s: LiveSuggestion) -> None:
        told.append(s)
        first_told.set()

    task = asyncio.create_task(analyzer.analyze(doc, emit))
    async with asyncio.timeout(5):
        await first_told.wait()
    # The first paragraph's answer (four suggestions) is far from written yet.
    (first_call,) = [
        c for c in server.record.calls if LINES[0] in prompt_of(c).split("<paragraph>")[-1]
    ]
    assert first_call.state == "open"
    in_flight = [c for c in server.record.calls if c.state == "open"]
    # As the owner does: the edit folds, and the pass it supersedes is cancelled at once.
    end = at(doc, "quiet") + len("quiet")
    doc.edit(1, [Change(end, end, " Suddenly it rained.")])
    cancelled_at = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await eventually(lambda: server.record.open_streams == 0)
    assert time.monotonic() - cancelled_at < 1.0
    assert {c.state for c in in_flight} == {"disconnected"}

    # Consistent: what was told is live and in place, nothing else changed, nothing read.
    assert [s.id for s in told] == list(doc.live)
    assert all(doc.live[s.id].quote == s.quote for s in told)
    check_slices(doc)
    assert doc.stale() == [0, 1] and doc.analyzed_version is None

    found, again = await run_pass(analyzer, doc)
    assert not set(again) & {s.id for s in told}  # found again: same ids, not told twice
    assert all(s.id in doc.live for s in told)
    assert found.result.reanalyzed == 2 and doc.stale() == []
    check_slices(doc)
    assert spans(doc) == await fresh_spans(analyzer, doc.text)


# ------------------------------------------------------------------ limits and faults


async def test_the_calls_in_flight_per_user_are_capped(start: Start) -> None:
    server, analyzer = await start(
        FakeGeminiConfig(port=0, first_token_ms=20, tokens_per_s=1000), doc_gemini_calls_per_user=2
    )
    docs = [
        DocumentState(doc_id, user, "\n".join(f"{line} ({doc_id})" for line in LINES))
        for doc_id, user in [("a1", "ann"), ("a2", "ann"), ("b1", "bob")]
    ]
    await asyncio.gather(*(run_pass(analyzer, doc) for doc in docs))

    calls = server.record.calls
    assert len(calls) == 9 and {c.state for c in calls} == {"completed"}

    def of(user: str) -> list[FakeCall]:
        ids = [d.doc_id for d in docs if d.user_id == user]
        return [c for c in calls if any(f"({i})" in prompt_of(c) for i in ids)]

    assert peak(of("ann")) == 2  # two documents, six paragraphs: two at a time
    assert peak(of("bob")) == 2
    assert peak(calls) > 2  # the cap is per user: bob did not wait for ann
    assert all(d.stale() == [] for d in docs)


@pytest.mark.parametrize(
    ("shared", "most"),
    [pytest.param(True, 2, marks=pytest.mark.redis, id="redis"), (False, 4)],
)
async def test_two_owners_count_a_users_calls_once_with_redis(
    request: pytest.FixtureRequest, shared: bool, most: int
) -> None:
    """Two owners (as two documents workers hold, built as the worker builds them) each
    run a pass of one of ann's documents: with Redis her calls in flight are capped once
    for both, without it each owner caps its own."""
    config = FakeGeminiConfig(port=0, first_token_ms=30, tokens_per_s=1000)
    redis = {"redis_url": request.getfixturevalue("redis_url")} if shared else {}
    prefix = f"t{uuid.uuid4().hex[:12]}"
    async with serve_fake_gemini(config) as server, AsyncExitStack() as stack:
        settings = make_settings(
            server.base_url, doc_gemini_calls_per_user=2, topic_prefix=prefix, **redis
        )
        owners = [create_document_analyzer(settings) for _ in range(2)]
        for owner in owners:
            stack.push_async_callback(owner.aclose)
        docs = [
            DocumentState(f"a{n}", "ann", "\n".join(f"{line} (a{n})" for line in LINES))
            for n in range(2)
        ]
        await asyncio.gather(
            *(owner.analyze(doc, lambda _: None) for owner, doc in zip(owners, docs, strict=True))
        )
    calls = server.record.calls
    assert len(calls) == 6 and {c.state for c in calls} == {"completed"}
    assert peak(calls) == most
    assert all(d.stale() == [] for d in docs)


async def test_a_quote_that_is_not_in_its_paragraph_is_dropped_and_counted(
    start: Start,
) -> None:
    _, analyzer = await start()
    text = f"{LINES[0]} {LINES[2]}"
    expected = await fresh_spans(analyzer, text)
    _, misquoting = await start(FakeGeminiConfig(port=0, first_token_ms=5, fault="misquote"))
    doc = DocumentState("d1", "u1", text)
    found, told = await run_pass(misquoting, doc)
    assert found.skipped == 1
    assert len(told) == len(expected) - 1
    assert set(spans(doc)) < set(expected)
    check_slices(doc)


async def test_a_schema_breaking_suggestion_is_skipped_and_counted(start: Start) -> None:
    _, analyzer = await start(FakeGeminiConfig(port=0, first_token_ms=5, fault="bad_object"))
    doc = DocumentState("d1", "u1", LINES[0])
    found, told = await run_pass(analyzer, doc)
    assert found.skipped == 1 and len(told) == 2


async def test_a_broken_stream_fails_the_pass_and_leaves_the_document_consistent(
    start: Start,
) -> None:
    _, analyzer = await start()
    doc = DocumentState("d1", "u1", "\n".join(LINES))
    await run_pass(analyzer, doc)
    live = dict(doc.live)
    server, breaking = await start(
        FakeGeminiConfig(port=0, first_token_ms=5, fault="midstream", midstream_after=40)
    )
    doc.edit(1, [Change(0, 0, "Then ")])
    doc.edit(2, [Change(len(doc.text), len(doc.text), " It was very late.")])
    shifted = {s.id: s for s in doc.live.values()}
    told: list[LiveSuggestion] = []
    with pytest.raises(ProviderError):
        await breaking.analyze(doc, told.append)
    # Nothing retracted, nothing marked read; what was told (if anything) is live.
    assert set(doc.live) == set(shifted) | {s.id for s in told}
    assert set(live) <= set(doc.live)
    assert doc.stale() == [0, 2] and doc.analyzed_version == 0
    check_slices(doc)
    # The other paragraph's call, if still going, was closed with the pass.
    await eventually(lambda: server.record.open_streams == 0)


async def test_a_stalled_call_fails_the_pass_in_bounded_time(start: Start) -> None:
    server, analyzer = await start(
        FakeGeminiConfig(port=0, first_token_ms=5, fault="stall"), gemini_idle_timeout_s=0.3
    )
    doc = DocumentState("d1", "u1", LINES[0])
    began = time.monotonic()
    with pytest.raises(ProviderError, match="stalled"):
        await run_pass(analyzer, doc)
    assert 0.3 <= time.monotonic() - began < 1.5
    await eventually(lambda: server.record.open_streams == 0)
    assert doc.stale() == [0]


def test_the_fake_reviews_the_closing_paragraph_only() -> None:
    # A paragraph tag typed inside the document is not the one under review.
    prompt = (
        "Focus: dialogue, plot\n<document>\n<paragraph>\ntyped\n</paragraph>\nShe said softly.\n"
        "</document>\nReview line 4 of the document's 4, this paragraph only:\n"
        "<paragraph>\nShe said softly.\n</paragraph>"
    )
    assert gemini_model.read_prompt(prompt) == gemini_model.Prompt(
        "She said softly.", ("plot", "dialogue")
    )
