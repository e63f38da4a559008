"""GeminiProvider through the real google-genai SDK against the fake Gemini server."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, aclosing
from typing import Any, Literal, cast

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from amplify_stream.config import Settings
from amplify_stream.errors import ProviderError, ProviderUnavailable
from amplify_stream.events import ALL_FOCUS, Focus
from amplify_stream.fakes import gemini_model
from amplify_stream.fakes.gemini import (
    FakeCall,
    FakeGeminiConfig,
    FakeGeminiServer,
    create_fake_gemini_app,
    run_fake_gemini,
    serve_fake_gemini,
)
from amplify_stream.fakes.settings import FakeSettings
from amplify_stream.providers.base import (
    EnhancementRequest,
    FindingSkipped,
    InsightFound,
    Piece,
    RewriteDelta,
    SuggestionFound,
    UsageReport,
)
from amplify_stream.providers.gemini import GeminiProvider
from amplify_stream.providers.gemini_analysis import AnalysisStream

pytestmark = [
    pytest.mark.timeout(30),
    # google-genai subclasses aiohttp.ClientSession, which aiohttp 3.14 frowns upon.
    pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning"),
]

STORY = (
    "Mara pushed open the door of the very dark kitchen. The air smelled of smoke and "
    "old bread.\n\n"
    '"Who is there?" she whispered softly. She felt afraid, and the floor was cold '
    "under her feet.\n\n"
    "Suddenly the lights came on and Tom stood by the stove with a cake in his hands and "
    "a grin on his face that said he had been waiting there in the dark for a really long "
    "time, maybe hours, while the candles burned down to nothing.\n\n"
    '"Happy birthday," Tom said quietly.'
)
Start = Callable[..., Awaitable[tuple[FakeGeminiServer, GeminiProvider]]]


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK's aiohttp session trusts the environment's proxies.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def make_settings(base_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "gemini_api_key": SecretStr("test-key"),
        "gemini_base_url": base_url,
        "gemini_model": "gemini-test-flash",
        "gemini_retry_attempts": 3,
        "gemini_retry_initial_delay_s": 0.01,
        "gemini_retry_max_delay_s": 0.05,
        "gemini_idle_timeout_s": 5.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """Start a fake and a provider pointed at it; both closed at the end."""
    async with AsyncExitStack() as stack:

        async def _start(
            config: FakeGeminiConfig | None = None, **overrides: Any
        ) -> tuple[FakeGeminiServer, GeminiProvider]:
            config = config or FakeGeminiConfig(port=0, first_token_ms=20, tokens_per_s=400)
            server = await stack.enter_async_context(serve_fake_gemini(config))
            provider = GeminiProvider(make_settings(server.base_url, **overrides))
            stack.push_async_callback(provider.aclose)
            return server, provider

        yield _start


def request(
    *, rewrite: bool = True, focus: tuple[Focus, ...] = ALL_FOCUS, text: str = STORY
) -> EnhancementRequest:
    return EnhancementRequest(story_id="s-1", text=text, focus=focus, rewrite=rewrite)


async def collect(
    provider: GeminiProvider, req: EnhancementRequest, seen: list[tuple[float, Piece]]
) -> None:
    stream = cast(AsyncGenerator[Piece, None], provider.stream(req))
    async with asyncio.timeout(10), aclosing(stream) as pieces:
        async for piece in pieces:
            seen.append((time.monotonic(), piece))


async def eventually(check: Callable[[], bool], within: float = 1.0) -> None:
    """Poll the fake's record (plain data, no events to wait on) until ``check`` holds."""
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def is_analysis(call: FakeCall) -> bool:
    return "responseSchema" in (call.body.get("generationConfig") or {})


def rewrite_call(server: FakeGeminiServer) -> FakeCall:
    (call,) = [c for c in server.record.calls if not is_analysis(c)]
    return call


# ------------------------------------------------------------------ the happy path


async def test_streams_rewrite_suggestions_insights_and_usage(start: Start) -> None:
    server, provider = await start()
    seen: list[tuple[float, Piece]] = []
    await collect(provider, request(), seen)
    pieces = [p for _, p in seen]

    deltas = [(t, p.text) for t, p in seen if isinstance(p, RewriteDelta)]
    expected = gemini_model.rewrite(STORY)
    assert "".join(text for _, text in deltas) == expected
    assert expected != STORY and "whispered softly" not in expected
    # Streamed: many small deltas spread over time, not one burst.
    assert len(deltas) > 20
    assert deltas[-1][0] - deltas[0][0] > 0.05

    suggestions = [p for p in pieces if isinstance(p, SuggestionFound)]
    assert len(suggestions) >= 4
    assert all(s.quote in STORY for s in suggestions)
    assert {s.focus for s in suggestions} <= set(ALL_FOCUS)
    assert any(s.quote == "whispered softly" and s.replacement == "whispered" for s in suggestions)
    insights = [p for p in pieces if isinstance(p, InsightFound)]
    assert [i.focus for i in insights] == list(ALL_FOCUS)
    assert all(i.summary and i.metrics for i in insights)

    # Deltas and findings as each call produces them; exactly one usage report, last.
    kinds = [type(p).__name__ for p in pieces]
    assert isinstance(pieces[-1], UsageReport) and kinds.count("UsageReport") == 1
    usage = pieces[-1]
    assert usage.input_tokens > gemini_model.count_tokens(STORY) * 2  # two calls' prompts
    assert usage.output_tokens >= gemini_model.count_tokens(expected)

    record = server.record
    # Both calls stream: the analysis too, so each finding goes out as it is written.
    assert [c.method for c in record.calls] == ["streamGenerateContent"] * 2
    assert all(c.state == "completed" for c in record.calls)
    analysis = next(c for c in record.calls if is_analysis(c))
    generation = analysis.body["generationConfig"]
    assert generation["responseMimeType"] == "application/json"
    assert set(generation["responseSchema"]["properties"]) == {"suggestions", "insights"}


async def test_pieces_that_arrive_together_go_out_as_one_delta(start: Start) -> None:
    # Unpaced: the chunks reach the socket faster than they are read, so several are
    # in the buffer whenever the provider looks; those become one delta, nothing lost.
    server, provider = await start(FakeGeminiConfig(port=0, first_token_ms=20, tokens_per_s=1e6))
    seen: list[tuple[float, Piece]] = []
    await collect(provider, request(), seen)

    deltas = [p.text for _, p in seen if isinstance(p, RewriteDelta)]
    assert "".join(deltas) == gemini_model.rewrite(STORY)
    assert all(deltas)
    assert len(deltas) < rewrite_call(server).chunks_sent


async def test_chunks_of_several_tokens(start: Start) -> None:
    # As Gemini streams: several tokens a chunk, each chunk paced by its last token.
    server, provider = await start(
        FakeGeminiConfig(port=0, first_token_ms=0, tokens_per_s=2000, tokens_per_chunk=4)
    )
    seen: list[tuple[float, Piece]] = []
    await collect(provider, request(), seen)

    deltas = [p.text for _, p in seen if isinstance(p, RewriteDelta)]
    assert "".join(deltas) == gemini_model.rewrite(STORY)
    stream = rewrite_call(server)
    tokens = len(gemini_model.stream_tokens(gemini_model.rewrite(STORY)))
    assert stream.chunks_sent == -(-tokens // 4)
    assert len(deltas) <= stream.chunks_sent


async def test_focus_restricts_analysis_and_no_rewrite_call(start: Start) -> None:
    server, provider = await start()
    seen: list[tuple[float, Piece]] = []
    await collect(provider, request(rewrite=False, focus=("dialogue",)), seen)
    pieces = [p for _, p in seen]

    assert not any(isinstance(p, RewriteDelta) for p in pieces)
    suggestions = [p for p in pieces if isinstance(p, SuggestionFound)]
    assert suggestions and all(s.focus == "dialogue" for s in suggestions)
    assert [p.focus for p in pieces if isinstance(p, InsightFound)] == ["dialogue"]
    assert isinstance(pieces[-1], UsageReport)
    assert [is_analysis(c) for c in server.record.calls] == [True]


# ------------------------------------------------------------------ failures


@pytest.mark.parametrize("failures", [1, 2])
async def test_429_is_retried_then_succeeds(start: Start, failures: int) -> None:
    config = FakeGeminiConfig(
        port=0, tokens_per_s=1000, fault="status", fault_status=429, fault_count=failures
    )
    # A retry delay long enough that both first attempts arrive before any retry does.
    server, provider = await start(config, gemini_retry_initial_delay_s=0.2)
    seen: list[tuple[float, Piece]] = []
    await collect(provider, request(), seen)

    text = "".join(p.text for _, p in seen if isinstance(p, RewriteDelta))
    assert text == gemini_model.rewrite(STORY)
    assert isinstance(seen[-1][1], UsageReport)
    calls = server.record.calls
    assert [c.status for c in calls].count(429) == failures and len(calls) == 2 + failures
    if failures == 2:  # both first attempts refused: the SDK retries a stream's opening too
        by_call = {
            kind: [c.status for c in calls if is_analysis(c) == (kind == "analysis")]
            for kind in ("analysis", "rewrite")
        }
        assert by_call == {"analysis": [429, 200], "rewrite": [429, 200]}


async def test_503_until_retries_run_out_is_unavailable(start: Start) -> None:
    config = FakeGeminiConfig(port=0, fault="status", fault_status=503)
    server, provider = await start(config, gemini_retry_attempts=3)
    began = time.monotonic()
    with pytest.raises(ProviderUnavailable, match="503 UNAVAILABLE") as caught:
        await collect(provider, request(), [])
    assert time.monotonic() - began < 3
    assert caught.value.retryable
    # At least one call used every attempt; every answer was a 503.
    assert server.record.requests >= 3
    assert {c.status for c in server.record.calls} == {503}


async def test_unreachable_service_is_unavailable(start: Start) -> None:
    server, _ = await start()
    async with serve_fake_gemini(FakeGeminiConfig(port=0)) as gone:
        base_url = gone.base_url  # a port that is certainly closed once this exits
    provider = GeminiProvider(make_settings(base_url))
    try:
        with pytest.raises(ProviderUnavailable, match="unreachable"):
            await collect(provider, request(), [])
    finally:
        await provider.aclose()
    assert server.record.requests == 0


@pytest.mark.parametrize("style", ["abort", "error_event"])
async def test_break_midstream_is_provider_error(
    start: Start, style: Literal["abort", "error_event"]
) -> None:
    config = FakeGeminiConfig(port=0, fault="midstream", midstream_after=3, midstream_style=style)
    server, provider = await start(config)
    seen: list[tuple[float, Piece]] = []
    with pytest.raises(ProviderError) as caught:
        await collect(provider, request(), seen)
    assert type(caught.value) is ProviderError
    # Both streams break after 3 chunks (too few for a whole finding); whichever the
    # provider hears of first ends it, after at most the rewrite's 3 chunks.
    assert seen and all(isinstance(p, RewriteDelta) for _, p in seen)
    text = "".join(p.text for _, p in seen if isinstance(p, RewriteDelta))
    assert "".join(gemini_model.stream_tokens(gemini_model.rewrite(STORY))[:3]).startswith(text)
    failed = [c for c in server.record.calls if c.state == "failed"]
    assert failed and all(c.chunks_sent == 3 for c in failed)
    # The other, if it had not broken yet, was closed by the provider.
    await eventually(lambda: server.record.count(state="open") == 0)


async def test_a_break_after_findings_went_out_is_not_retryable(start: Start) -> None:
    # Without a rewrite the first output is a finding: a failure after it is a provider
    # error (the client has suggestions), never "unavailable, try again".
    config = FakeGeminiConfig(
        port=0, fault="midstream", midstream_after=120, midstream_style="error_event"
    )
    _, provider = await start(config)
    seen: list[tuple[float, Piece]] = []
    with pytest.raises(ProviderError) as caught:
        await collect(provider, request(rewrite=False), seen)
    assert type(caught.value) is ProviderError and not caught.value.retryable
    assert any(isinstance(p, SuggestionFound) for _, p in seen)


async def test_stalled_stream_is_provider_error_in_bounded_time(start: Start) -> None:
    server, provider = await start(
        FakeGeminiConfig(port=0, first_token_ms=10, fault="stall"), gemini_idle_timeout_s=0.3
    )
    seen: list[tuple[float, Piece]] = []
    began = time.monotonic()
    with pytest.raises(ProviderError, match="stalled"):
        await collect(provider, request(), seen)
    assert 0.3 <= time.monotonic() - began < 1.5
    assert [type(p) for _, p in seen] == [RewriteDelta]  # the first chunk, then nothing
    # Giving up closed both connections: the fake sees its clients go.
    await eventually(lambda: server.record.count(state="open") == 0)
    assert server.record.count(state="disconnected") == 2


async def test_stalled_analysis_alone_is_provider_error(start: Start) -> None:
    _, provider = await start(FakeGeminiConfig(port=0, fault="stall"), gemini_idle_timeout_s=0.2)
    with pytest.raises(ProviderError, match="stalled"):
        await collect(provider, request(rewrite=False), [])


def test_a_malformed_object_is_skipped_a_malformed_answer_is_provider_error() -> None:
    analysis = AnalysisStream(ALL_FOCUS)
    found = analysis.feed('{"suggestions": [{"focus": "weather", "quote": 3}, ')
    assert [type(p) for p in found] == [FindingSkipped]
    assert isinstance(found[0], FindingSkipped) and "focus" in found[0].error
    assert "weather" not in found[0].error  # what was wrong, never the text itself
    found = analysis.feed('{"focus": "plot", "quote": "q", "message": "m"}], "insights": []}')
    assert found == [SuggestionFound(focus="plot", quote="q", message="m", rule="model.plot")]
    analysis.finish()  # a whole, well-formed answer: nothing raised
    for answer in (
        "Sure! Here are my notes:",
        '{"suggestions": [',
        '{"notes": []}',
        '{"suggestions": [], "insights": []} and the story says "Mara ran"',
    ):
        with pytest.raises(ProviderError, match="malformed") as caught:
            analysis = AnalysisStream(ALL_FOCUS)
            analysis.feed(answer)
            analysis.finish()
        # What was wrong, on one line, never the answer (which quotes the story).
        assert "\n" not in caught.value.message and "Mara" not in caught.value.message


def test_each_finding_goes_out_with_its_closing_brace() -> None:
    answer = (
        '{"suggestions": [{"focus": "plot", "quote": "a", "message": "m", "replacement": "b"},'
        ' {"focus": "dialogue", "quote": "c", "message": "n"}],'
        ' "insights": [{"focus": "plot", "summary": "s", "metrics": [{"name": "x", "value": 1}]}]}'
    )
    analysis = AnalysisStream(["plot"])  # dialogue is not asked for
    given: list[tuple[int, object]] = []
    for i, char in enumerate(answer):
        given += [(i, p) for p in analysis.feed(char)]
    analysis.finish()
    closes = [i for i, char in enumerate(answer) if char == "}"]
    assert given == [
        (
            closes[0],
            SuggestionFound(
                focus="plot", quote="a", message="m", replacement="b", rule="model.plot"
            ),
        ),
        (closes[3], InsightFound(focus="plot", summary="s", metrics={"x": 1.0})),
    ]


# ------------------------------------------------------------------ cancellation


@pytest.mark.parametrize("where", ["awaiting the provider", "between pieces"])
async def test_cancelling_the_consumer_closes_the_connections(start: Start, where: str) -> None:
    # Slow enough that both calls are still in flight when the consumer is cancelled.
    server, provider = await start(FakeGeminiConfig(port=0, first_token_ms=10, tokens_per_s=20))
    first = asyncio.Event()
    # Held here and never closed by the consumer, so neither aclose() nor garbage
    # collection can be what stops the calls: cancelling the consumer alone must.
    pieces = cast(AsyncGenerator[Piece, None], provider.stream(request()))

    async def consume() -> None:
        async for _ in pieces:
            first.set()
            if where == "between pieces":
                await asyncio.sleep(3600)

    task = asyncio.create_task(consume())
    try:
        async with asyncio.timeout(5):
            await first.wait()
        assert server.record.count(state="open") == 2
        cancelled_at = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await eventually(lambda: server.record.count(state="open") == 0, within=1.0)
        assert time.monotonic() - cancelled_at < 1.0
        assert {c.state for c in server.record.calls} == {"disconnected"}
    finally:
        await pieces.aclose()


# ------------------------------------------------------------------ the fake's wire format


@pytest.fixture
async def wire() -> AsyncIterator[TestClient[Any, Any]]:
    app = create_fake_gemini_app(FakeGeminiConfig(first_token_ms=0, tokens_per_s=10_000))
    async with TestClient(TestServer(app)) as client:
        yield client


BODY = {"contents": [{"role": "user", "parts": [{"text": f"<story>\n{STORY}\n</story>"}]}]}
KEY = {"x-goog-api-key": "k"}


async def test_wire_sse_events(wire: TestClient[Any, Any]) -> None:
    path = "/v1beta/models/gemini-test:streamGenerateContent?alt=sse"
    async with wire.post(path, json=BODY, headers=KEY) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        raw = await response.text()
    blocks = [b for b in raw.split("\r\n\r\n") if b]
    events = [json.loads(b.removeprefix("data: ")) for b in blocks]
    assert all(b.startswith("data: ") for b in blocks)
    text = "".join(e["candidates"][0]["content"]["parts"][0]["text"] for e in events)
    assert text == gemini_model.rewrite(STORY)
    assert all(e["candidates"][0]["content"]["role"] == "model" for e in events)
    assert [e["candidates"][0].get("finishReason") for e in events][-2:] == [None, "STOP"]
    usage = events[-1]["usageMetadata"]
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]
    assert {e["modelVersion"] for e in events} == {"gemini-test"}
    assert len({e["responseId"] for e in events}) == 1


async def test_wire_json_answer_follows_the_schema(wire: TestClient[Any, Any]) -> None:
    schema = {
        "type": "OBJECT",
        "properties": {
            "suggestions": {
                "type": "ARRAY",
                "items": {"type": "OBJECT", "properties": {"quote": {"type": "STRING"}}},
            }
        },
    }
    body = {
        **BODY,
        "generationConfig": {"responseMimeType": "application/json", "responseSchema": schema},
    }
    async with wire.post("/v1beta/models/m:generateContent", json=body, headers=KEY) as response:
        assert response.status == 200
        answer = await response.json()
    assert answer["candidates"][0]["finishReason"] == "STOP"
    data = json.loads(answer["candidates"][0]["content"]["parts"][0]["text"])
    assert set(data) == {"suggestions"}
    assert data["suggestions"] and all(set(s) == {"quote"} for s in data["suggestions"])
    assert all(s["quote"] in STORY for s in data["suggestions"])


async def test_wire_errors_are_googles(wire: TestClient[Any, Any]) -> None:
    async with wire.post("/v1beta/models/m:generateContent", json=BODY) as response:
        assert response.status == 403
        assert (await response.json())["error"]["status"] == "PERMISSION_DENIED"
    async with wire.post("/v1beta/models/m:countTokens", json=BODY, headers=KEY) as response:
        assert response.status == 404
        assert (await response.json())["error"]["code"] == 404


async def test_wire_status_fault_then_success() -> None:
    config = FakeGeminiConfig(fault="status", fault_status=429, fault_count=1)
    async with TestClient(TestServer(create_fake_gemini_app(config))) as client:
        path = "/v1beta/models/m:generateContent"
        async with client.post(path, json=BODY, headers=KEY) as response:
            assert response.status == 429
            error = (await response.json())["error"]
            assert (error["code"], error["status"]) == (429, "RESOURCE_EXHAUSTED")
        async with client.post(path, json=BODY, headers=KEY) as response:
            assert response.status == 200


async def test_run_fake_gemini_serves_until_cancelled() -> None:
    settings = FakeSettings(_env_file=None, fake_gemini_port=0, fake_gemini_first_token_ms=0)
    ready: asyncio.Queue[FakeGeminiServer] = asyncio.Queue()
    task = asyncio.create_task(run_fake_gemini(settings, on_ready=ready.put_nowait))
    try:
        async with asyncio.timeout(5):
            server = await ready.get()
            async with (
                ClientSession() as session,
                session.post(
                    f"{server.base_url}/v1beta/models/m:generateContent", json=BODY, headers=KEY
                ) as response,
            ):
                assert response.status == 200
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_a_note_names_its_rule_and_passes_the_same_filters() -> None:
    stream = AnalysisStream(["plot", "dialogue"])
    notes = [
        {"focus": "plot", "quote": "a", "message": "m", "rule": "plot.passive"},
        # A catalogue rule of another focus, or none: the model's own, of its focus.
        {"focus": "plot", "quote": "b", "message": "m", "rule": "dialogue.adverb_tag"},
        {"focus": "dialogue", "quote": "c", "message": "m"},
        # A rule off by default never reaches the writer.
        {"focus": "plot", "quote": "d", "message": "m", "rule": "plot.close_repeat"},
    ]
    found = stream.feed(json.dumps({"suggestions": notes, "insights": []}))
    stream.finish()
    assert [(s.quote, s.rule) for s in found if isinstance(s, SuggestionFound)] == [
        ("a", "plot.passive"),
        ("b", "model.plot"),
        ("c", "model.dialogue"),
    ]
