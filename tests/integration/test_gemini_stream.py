"""The Gemini stream reader (``gemini_stream.py``) through the real SDK's transport: against
the fake Gemini, against answers scripted event by event in Gemini's SSE wire format, and
on the SDK's public path when the private pieces it uses are missing."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiohttp import web
from google import genai
from google.genai import errors as genai_errors
from google.genai import types
from pydantic import SecretStr

from amplify_stream.config import Settings
from amplify_stream.errors import ProviderError, ProviderUnavailable
from amplify_stream.fakes import gemini_model
from amplify_stream.fakes.gemini import FakeGeminiConfig, serve_fake_gemini
from amplify_stream.providers import gemini_stream
from amplify_stream.providers.base import UsageReport
from amplify_stream.providers.gemini_client import (
    close_client,
    create_client,
    provider_error,
    stream_text,
)
from amplify_stream.providers.gemini_stream import Chunk, stream_chunks

pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning"),
]

STORY = "Mara pushed open the door of the very dark kitchen. The air smelled of smoke."
PROMPT = f"<story>\n{STORY}\n</story>"
CONFIG = types.GenerateContentConfig(system_instruction="Rewrite it.", temperature=0.3)
Client = Callable[[str], Awaitable[genai.Client]]


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture(autouse=True)
def _fast_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with the fast reader on, as a new process does (a fallback sticks
    for the rest of the process; monkeypatch puts it back after the test)."""
    monkeypatch.setattr(gemini_stream, "_sdk_reads", None)
    monkeypatch.setattr(gemini_stream, "_fallback_logged", False)


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    async with AsyncExitStack() as stack:

        async def make(base_url: str) -> genai.Client:
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                gemini_api_key=SecretStr("test-key"),
                gemini_base_url=base_url,
                gemini_retry_attempts=2,
                gemini_retry_initial_delay_s=0.01,
                gemini_retry_max_delay_s=0.02,
            )
            made = create_client(settings)
            stack.push_async_callback(close_client, made)
            return made

        yield make


def without_private_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if google-genai no longer had the private request builder the reader uses."""
    monkeypatch.setattr(gemini_stream, "genai_models", SimpleNamespace())
    # Nothing converted by it before: in such a process it never converted anything.
    monkeypatch.setattr(gemini_stream, "_CONFIG_PARTS", OrderedDict())


async def read_all(made: genai.Client, config: types.GenerateContentConfig = CONFIG) -> list[Chunk]:
    return [c async for c in stream_chunks(made, "gemini-test-flash", PROMPT, config)]


# ------------------------------------------------------------------ against the fake Gemini


async def test_the_fakes_answer_chunk_by_chunk(client: Client) -> None:
    config = FakeGeminiConfig(port=0, first_token_ms=0, tokens_per_s=10_000, tokens_per_chunk=3)
    async with serve_fake_gemini(config) as server:
        chunks = await read_all(await client(server.base_url))
        (call,) = server.record.calls
    tokens = gemini_model.stream_tokens(gemini_model.rewrite(STORY))
    assert len(chunks) == call.chunks_sent == -(-len(tokens) // 3)
    assert "".join(c.text for c in chunks) == "".join(tokens)
    assert [c.finish_reason for c in chunks] == [None] * (len(chunks) - 1) + ["STOP"]
    prompt = gemini_model.count_tokens("Rewrite it." + PROMPT)
    output = gemini_model.count_chars_tokens(len("".join(tokens)))
    assert chunks[-1].usage == UsageReport(input_tokens=prompt, output_tokens=output)
    # The request as the SDK makes it: key, path, body.
    assert call.method == "streamGenerateContent" and call.model == "gemini-test-flash"
    assert call.body["systemInstruction"]["parts"] == [{"text": "Rewrite it."}]
    assert call.body["contents"] == [{"parts": [{"text": PROMPT}], "role": "user"}]
    assert call.body["generationConfig"] == {"temperature": 0.3}
    assert call.state == "completed"


async def test_the_sdks_public_path_reads_the_same_when_the_private_one_is_gone(
    client: Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    config = FakeGeminiConfig(port=0, first_token_ms=0, tokens_per_s=10_000)
    async with serve_fake_gemini(config) as server:
        made = await client(server.base_url)
        fast = await read_all(made)
        without_private_sdk(monkeypatch)
        with caplog.at_level(logging.WARNING, logger=gemini_stream.__name__):
            public = await read_all(made)
            again = await read_all(made)
        bodies = [c.body for c in server.record.calls]
    assert public == again == fast and len(fast) > 3
    assert bodies[0] == bodies[1] == bodies[2]
    (warning,) = [r for r in caplog.records if r.name == gemini_stream.__name__]  # once
    assert "_GenerateContentParameters_to_mldev" in warning.getMessage()


async def test_an_error_status_is_retried_then_raised_by_the_sdk(client: Client) -> None:
    config = FakeGeminiConfig(port=0, fault="status", fault_status=503, fault_count=5)
    async with serve_fake_gemini(config) as server:
        with pytest.raises(genai_errors.ServerError) as caught:
            await read_all(await client(server.base_url))
        assert [c.status for c in server.record.calls] == [503, 503]  # two attempts
    assert caught.value.code == 503
    assert isinstance(provider_error(caught.value, started=False), ProviderUnavailable)


@pytest.mark.parametrize("style", ["abort", "error_event"])
async def test_a_stream_that_breaks_raises_after_what_came(client: Client, style: Any) -> None:
    config = FakeGeminiConfig(
        port=0, tokens_per_s=10_000, fault="midstream", midstream_after=2, midstream_style=style
    )
    async with serve_fake_gemini(config) as server:
        made = await client(server.base_url)
        seen: list[str | UsageReport] = []
        with pytest.raises(Exception) as caught:  # what the SDK raises
            async for text in stream_text(made, "gemini-test-flash", PROMPT, CONFIG, "rewrite"):
                seen.append(text)
    assert len(seen) == 2 and all(isinstance(t, str) and t for t in seen)
    error = provider_error(caught.value, started=True)
    assert type(error) is ProviderError
    if style == "error_event":
        assert isinstance(caught.value, genai_errors.ServerError)
        assert "500 INTERNAL" in str(error)
    else:
        assert "stream broke" in str(error)


async def test_closing_the_reader_closes_the_connection(client: Client) -> None:
    config = FakeGeminiConfig(port=0, first_token_ms=0, tokens_per_s=50)
    async with serve_fake_gemini(config) as server:
        chunks = stream_chunks(await client(server.base_url), "m", PROMPT, CONFIG)
        first = await anext(chunks)
        assert first.text and server.record.open_streams == 1
        await chunks.aclose()
        async with asyncio.timeout(2):
            while server.record.open_streams:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        assert server.record.calls[0].state == "disconnected"


# ------------------------------------------------------------------ scripted answers

# Events, "abort" to drop the connection, or bytes written as they are.
Script = list[dict[str, Any] | str | bytes]


@pytest.fixture
async def scripted() -> AsyncIterator[Callable[..., Awaitable[tuple[str, list[dict[str, Any]]]]]]:
    """A server that answers each call with the next script, event by event, as Gemini's
    SSE stream does; the bodies it was sent are recorded."""
    async with AsyncExitStack() as stack:

        async def serve(*scripts: Script) -> tuple[str, list[dict[str, Any]]]:
            bodies: list[dict[str, Any]] = []

            async def answer(request: web.Request) -> web.StreamResponse:
                bodies.append(await request.json())
                response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
                await response.prepare(request)
                for event in scripts[len(bodies) - 1]:
                    if event == "abort":
                        assert request.transport is not None
                        request.transport.abort()
                        return response
                    if isinstance(event, bytes):
                        await response.write(event)
                        await asyncio.sleep(0.01)  # its own read, most likely
                    else:
                        await response.write(b"data: " + orjson.dumps(event) + b"\r\n\r\n")
                await response.write_eof()
                return response

            app = web.Application()
            app.router.add_post("/{version}/models/{call}", answer)
            runner = web.AppRunner(app)
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            return f"http://{host}:{port}", bodies

        yield serve


def event(
    text: str | None = None,
    finish: str | None = None,
    usage: tuple[int, int] | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"index": 0}
    if text is not None:
        candidate["content"] = {"parts": [{"text": text}], "role": "model"}
    if finish is not None:
        candidate["finishReason"] = finish
    if token is not None:
        candidate["continuationToken"] = token
    answer: dict[str, Any] = {"candidates": [candidate]}
    if usage is not None:
        prompt, output = usage
        answer["usageMetadata"] = {"promptTokenCount": prompt, "candidatesTokenCount": output}
    return answer


async def rewrite(made: genai.Client) -> list[str | UsageReport]:
    return [t async for t in stream_text(made, "gemini-test-flash", PROMPT, CONFIG, "rewrite")]


@pytest.mark.parametrize("private", [True, False], ids=["fast", "public"])
async def test_answers_cut_short_or_refused_are_provider_errors(
    client: Client, scripted: Any, monkeypatch: pytest.MonkeyPatch, private: bool
) -> None:
    if not private:
        without_private_sdk(monkeypatch)
    base, _ = await scripted(
        [event("One", usage=(5, 1)), event(" two", "MAX_TOKENS", usage=(5, 2))],
        [event(finish="SAFETY")],
        [{"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}],
        [event("No finish reason at all")],
        [
            {
                "candidates": [
                    {
                        "content": {"parts": [{"text": "Hmm.", "thought": True}, {"text": "Ok."}]},
                        "finishReason": "STOP",
                    }
                ],
                "usageMetadata": {
                    "promptTokenCount": 5,
                    "candidatesTokenCount": 1,
                    "thoughtsTokenCount": 7,
                },
            }
        ],
    )
    made = await client(base)
    with pytest.raises(ProviderError, match=r"rewrite ended early \(MAX_TOKENS\)"):
        await rewrite(made)
    with pytest.raises(ProviderError, match=r"rewrite ended early \(SAFETY\)"):
        await rewrite(made)
    with pytest.raises(ProviderError, match="refused the rewrite: PROHIBITED_CONTENT"):
        await rewrite(made)
    with pytest.raises(ProviderError, match=r"ended early \(no finish reason\)"):
        await rewrite(made)
    assert await rewrite(made) == ["Ok.", UsageReport(input_tokens=5, output_tokens=8)]


async def test_a_continued_answer_goes_on_from_its_token(client: Client, scripted: Any) -> None:
    base, bodies = await scripted(
        [event("Once upon", usage=(5, 2)), event(" a time", "CONTINUATION", (5, 4), "dG9rMQ==")],
        [event(", in a far", usage=(9, 3)), event(" land.", "STOP", (9, 5))],
    )
    assert await rewrite(await client(base)) == [
        "Once upon",
        " a time",
        ", in a far",
        " land.",
        UsageReport(input_tokens=14, output_tokens=9),  # both requests' usage
    ]
    assert "continuationToken" not in bodies[0]
    assert bodies[1]["continuationToken"] == "dG9rMQ=="
    assert bodies[1]["contents"] == bodies[0]["contents"]


async def test_a_break_after_a_checkpoint_goes_on_from_it(client: Client, scripted: Any) -> None:
    base, bodies = await scripted(
        [event("Once upon", usage=(5, 2)), event(" a time", None, (5, 4), "dG9rMQ=="), "abort"],
        [event(" there was", "STOP", (9, 2))],
    )
    assert await rewrite(await client(base)) == [
        "Once upon",
        " a time",
        " there was",
        UsageReport(input_tokens=14, output_tokens=6),
    ]
    assert bodies[1]["continuationToken"] == "dG9rMQ=="


async def test_no_continuation_when_it_is_turned_off(client: Client, scripted: Any) -> None:
    base, bodies = await scripted(
        [event("Once upon", "CONTINUATION", (5, 2), "dG9rMQ==")],
    )
    config = CONFIG.model_copy(update={"automatic_continuation": False})
    chunks = await read_all(await client(base), config)
    assert [c.finish_reason for c in chunks] == ["CONTINUATION"] and len(bodies) == 1


async def test_events_split_anyhow_and_a_plain_json_error(client: Client, scripted: Any) -> None:
    whole = orjson.dumps(event("Once upon a time", usage=(5, 4)))
    base, _ = await scripted(
        [
            # An event over several reads, its JSON over two data lines (cut where JSON
            # allows a line break, as SSE joins them with one).
            b"data: " + whole[:7],
            whole[7:15] + b"\ndata:" + whole[15:] + b"\r\n",
            b"\r\n",
            b"data: " + orjson.dumps(event(" there", "STOP", (5, 5))),  # no blank line: EOF
        ],
        [
            event("Once", usage=(5, 1)),
            b'{"error": {\n  "code": 503,\n  "status": "UNAVAILABLE"\n}}\n',
        ],
    )
    made = await client(base)
    assert await rewrite(made) == [
        "Once upon a time",
        " there",
        UsageReport(input_tokens=5, output_tokens=5),
    ]
    with pytest.raises(genai_errors.ServerError, match="503 UNAVAILABLE"):
        await rewrite(made)


async def test_an_answer_in_a_shape_it_cannot_read_is_read_by_the_sdk(
    client: Client, scripted: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Token counts as strings (as proto3 JSON writes 64-bit integers): the SDK's models
    # read them, the fast reader cannot. Nothing had gone out, so the SDK asks again and
    # reads the answer whole; the next call goes to the SDK straight away, warned once.
    odd = event("Once upon a time", "STOP")
    odd["usageMetadata"] = {"promptTokenCount": "5", "candidatesTokenCount": "4"}
    base, bodies = await scripted([odd], [odd], [odd])
    made = await client(base)
    with caplog.at_level(logging.WARNING, logger=gemini_stream.__name__):
        first = await rewrite(made)
        second = await rewrite(made)
    assert first == second == ["Once upon a time", UsageReport(input_tokens=5, output_tokens=4)]
    assert len(bodies) == 3 and bodies[0] == bodies[1] == bodies[2]
    (warning,) = [r for r in caplog.records if r.name == gemini_stream.__name__]
    assert "cannot read" in warning.getMessage() and "TypeError" in warning.getMessage()


async def test_an_unreadable_event_after_text_went_out_fails_the_answer(
    client: Client, scripted: Any
) -> None:
    # What went out cannot be taken back: the answer fails (and the story's attempt with
    # it) rather than being told twice.
    odd = event(" a time", "STOP")
    odd["candidates"][0]["content"]["parts"] = "not a list of parts"
    base, bodies = await scripted([event("Once upon", usage=(5, 2)), odd])
    made = await client(base)
    seen: list[str | UsageReport] = []
    with pytest.raises(gemini_stream.UnreadableAnswer):
        async for text in stream_text(made, "gemini-test-flash", PROMPT, CONFIG, "rewrite"):
            seen.append(text)
    assert seen == ["Once upon"] and len(bodies) == 1
