"""The fake Gemini's wire format: SSE events, JSON answers and Google's error bodies."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from amplify_stream.fakes import gemini_model as model

if TYPE_CHECKING:
    from amplify_stream.fakes.gemini_calls import FakeCall, FakeGeminiConfig

# Google's canonical status names for the HTTP codes the fake answers with.
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_MESSAGES = {
    429: "You exceeded your current quota, please check your plan and billing details.",
    500: "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
}
# How often a waiting handler checks that its client is still there (a paced token
# waits in one sleep: 30 tokens/s for hundreds of streams is no small load of timers).
_POLL_S = 0.05


def error_body(code: int, message: str | None = None) -> dict[str, Any]:
    status = _STATUS_NAMES.get(code, "UNKNOWN")
    return {
        "error": {"code": code, "message": message or _MESSAGES.get(code, status), "status": status}
    }


def json_error(code: int, message: str | None = None) -> web.Response:
    return web.json_response(error_body(code, message), status=code)


@dataclass(frozen=True, slots=True)
class Answer:
    tokens: list[str]
    prompt_tokens: int
    model: str
    response_id: str

    @classmethod
    def build(
        cls,
        body: dict[str, Any],
        model_name: str,
        serial: int,
        *,
        bad_object: bool = False,
        misquote: bool = False,
    ) -> Answer:
        """``bad_object``: one suggestion of a JSON answer breaks its schema (the fault
        ``bad_object``), the rest of the answer is as asked. ``misquote``: the first
        suggestion's quote is not what the text says (its letters' case swapped, as a
        model retyping a quote may do), the rest as asked."""
        user_text = _texts(body.get("contents"))
        prompt = model.read_prompt(user_text)
        config = body.get("generationConfig") or {}
        if config.get("responseMimeType") == "application/json":
            schema = config.get("responseSchema") or config.get("responseJsonSchema")
            analysis = model.conform(model.analyse(prompt), schema, schema or {})
            if bad_object:
                # Second place (first when alone): a focus the schema does not know and
                # no message.
                at = min(1, len(analysis.get("suggestions", [])))
                broken = {"focus": "pacing", "quote": prompt.story[:20]}
                analysis.setdefault("suggestions", []).insert(at, broken)
            if misquote and analysis.get("suggestions"):
                first = analysis["suggestions"][0]
                first["quote"] = first["quote"].swapcase()
            # Written a word-sized token at a time, as the rewrite is and as Gemini
            # writes JSON mode: an object is whole once its last token is out.
            tokens = model.stream_tokens(json.dumps(analysis, ensure_ascii=False))
        else:
            tokens = model.stream_tokens(model.rewrite(prompt.story))
        system = _texts([body.get("systemInstruction") or {}])
        digest = hashlib.sha256(f"{serial}:{model_name}:{user_text}".encode()).hexdigest()
        return cls(
            tokens=tokens,
            prompt_tokens=model.count_tokens(system + user_text),
            model=model_name.removeprefix("models/"),
            response_id=digest[:22],
        )

    def chunk(
        self, text: str, sent: int, *, last: bool, sent_chars: int | None = None
    ) -> dict[str, Any]:
        """The response after ``sent`` tokens (``sent_chars``: their length, when the
        caller keeps count, so a long stream does not join its prefix for every chunk)."""
        candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}}
        if last:
            candidate["finishReason"] = "STOP"
        candidate["index"] = 0
        if sent_chars is None:
            sent_chars = sum(len(t) for t in self.tokens[:sent])
        output = model.count_chars_tokens(sent_chars)
        return {
            "candidates": [candidate],
            "usageMetadata": {
                "promptTokenCount": self.prompt_tokens,
                "candidatesTokenCount": output,
                "totalTokenCount": self.prompt_tokens + output,
            },
            "modelVersion": self.model,
            "responseId": self.response_id,
        }


def _texts(contents: Any) -> str:
    parts = [p for c in contents or [] if isinstance(c, dict) for p in c.get("parts") or []]
    return "\n".join(str(p["text"]) for p in parts if isinstance(p, dict) and "text" in p)


async def answer_unary(
    request: web.Request, config: FakeGeminiConfig, call: FakeCall, answer: Answer
) -> web.StreamResponse:
    try:
        if config.fault == "stall":
            await _pause(request, math.inf)
        # A non-streaming call answers once the whole text is "generated".
        await _pause(
            request, config.first_token_ms / 1000 + len(answer.tokens) / config.tokens_per_s
        )
    except ConnectionResetError:
        call.state = "disconnected"
        return web.Response(status=499)  # nobody will read it
    call.state = "completed"
    return web.json_response(answer.chunk("".join(answer.tokens), len(answer.tokens), last=True))


async def answer_stream(
    request: web.Request, config: FakeGeminiConfig, call: FakeCall, answer: Answer
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    loop = asyncio.get_running_loop()
    first_at = loop.time() + config.first_token_ms / 1000
    sent_chars = 0
    try:
        tokens, size = answer.tokens, config.tokens_per_chunk
        for start in range(0, len(tokens), size):
            # A chunk goes out once its last token is "generated".
            end = min(start + size, len(tokens))
            await _pause(request, first_at + (end - 1) / config.tokens_per_s - loop.time())
            if config.fault == "midstream" and call.chunks_sent >= config.midstream_after:
                return await _break(request, config, call, response)
            text = "".join(tokens[start:end])
            sent_chars += len(text)
            event = answer.chunk(text, end, last=end == len(tokens), sent_chars=sent_chars)
            await response.write(b"data: " + orjson.dumps(event) + b"\r\n\r\n")
            call.chunks_sent += 1
            if config.fault == "stall":
                await _pause(request, math.inf)
        await response.write_eof()
    except ConnectionResetError:
        call.state = "disconnected"
        return response
    call.state = "completed"
    return response


async def _break(
    request: web.Request, config: FakeGeminiConfig, call: FakeCall, response: web.StreamResponse
) -> web.StreamResponse:
    call.state = "failed"
    if config.midstream_style == "error_event":
        event = error_body(500)
        await response.write(f"data: {json.dumps(event)}\r\n\r\n".encode())
        await response.write_eof()
    elif request.transport is not None:
        request.transport.abort()  # a dropped connection: no terminating chunk
    return response


async def _pause(request: web.Request, seconds: float) -> None:
    """Sleep, but notice a client that went away (raising ConnectionResetError)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(seconds, 0.0)
    while True:
        transport = request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the client closed the connection")
        remaining = deadline - loop.time()
        if remaining <= 0:
            return
        await asyncio.sleep(min(remaining, _POLL_S))
