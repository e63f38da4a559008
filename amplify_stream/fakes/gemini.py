"""A fake Gemini API server speaking the real REST/SSE wire format, for the real SDK.

``POST /{version}/models/{model}:streamGenerateContent?alt=sse`` streams SSE events
(``data: {candidates, usageMetadata, modelVersion, responseId}`` and a blank line, the
last with ``finishReason: STOP``); ``POST .../{model}:generateContent`` answers JSON.
Errors are Google's ``{"error": {"code", "message", "status"}}``. Faults (a status for
the first N calls, a stream that breaks, a stream that stalls, one suggestion against the
schema, one suggestion misquoting the text) and pacing come from ``FakeGeminiConfig``;
what the server saw is in ``app[FAKE_GEMINI_RECORD]``, and for a fake in another process
at ``GET /_fake/record`` (JSON: counts and every call's state).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from amplify_stream.fakes.gemini_wire import Answer, answer_stream, answer_unary, json_error
from amplify_stream.fakes.settings import DEFAULTS, FakeSettings

log = logging.getLogger(__name__)

Fault = Literal["none", "status", "midstream", "stall", "bad_object", "misquote"]
CallState = Literal["open", "completed", "failed", "disconnected"]


@dataclass(frozen=True, slots=True)
class FakeGeminiConfig:
    # The defaults of the settings (``fakes/settings.py``) where there is one.
    host: str = DEFAULTS.fake_gemini_host
    port: int = DEFAULTS.fake_gemini_port
    first_token_ms: int = DEFAULTS.fake_gemini_first_token_ms
    tokens_per_s: float = DEFAULTS.fake_gemini_tokens_per_s
    tokens_per_chunk: int = DEFAULTS.fake_gemini_tokens_per_chunk
    fault: Fault = DEFAULTS.fake_gemini_fault
    fault_status: int = DEFAULTS.fake_gemini_fault_status
    fault_count: int = DEFAULTS.fake_gemini_fault_count
    # midstream (streams only; unary calls answer normally): how many chunks go out
    # before the break, and how it breaks: a dropped connection or an error event.
    midstream_after: int = 3
    midstream_style: Literal["abort", "error_event"] = "abort"
    # None accepts any non-empty key (as a sandbox should); a string must match.
    api_key: str | None = None

    def __post_init__(self) -> None:
        if self.tokens_per_s <= 0:
            raise ValueError("tokens_per_s must be positive")
        if self.tokens_per_chunk < 1:
            raise ValueError("tokens_per_chunk must be at least 1")

    @classmethod
    def from_settings(cls, settings: FakeSettings) -> FakeGeminiConfig:
        return cls(**settings.of("fake_gemini_"))


@dataclass(slots=True)
class FakeCall:
    """One model call as the fake saw it."""

    method: str  # "generateContent" or "streamGenerateContent"
    model: str
    body: dict[str, Any]
    status: int = 200
    chunks_sent: int = 0
    state: CallState = "open"
    # Wall-clock seconds, so a test in another process can place the call among its own
    # moments (which call a frozen worker had open, say).
    started_at: float = field(default_factory=time.time)
    ended_at: float | None = None


@dataclass(slots=True)
class FakeGeminiRecord:
    calls: list[FakeCall] = field(default_factory=list)
    rejected: int = 0  # refused before reaching a model: bad key, bad path, bad JSON

    @property
    def requests(self) -> int:
        return len(self.calls)

    def count(self, *, method: str | None = None, state: CallState | None = None) -> int:
        return sum(
            1
            for c in self.calls
            if (method is None or c.method == method) and (state is None or c.state == state)
        )

    @property
    def open_streams(self) -> int:
        return self.count(method="streamGenerateContent", state="open")

    def summary(self) -> dict[str, Any]:
        """What ``GET /_fake/record`` answers."""
        return {
            "requests": self.requests,
            "rejected": self.rejected,
            "open_streams": self.open_streams,
            "open_calls": self.count(state="open"),
            "calls": [
                {
                    "method": c.method,
                    "model": c.model,
                    # Asked for JSON (the analysis), not text (the rewrite).
                    "structured": (c.body.get("generationConfig") or {}).get("responseMimeType")
                    == "application/json",
                    "status": c.status,
                    "chunks_sent": c.chunks_sent,
                    "state": c.state,
                    "started_at": c.started_at,
                    "ended_at": c.ended_at,
                }
                for c in self.calls
            ],
        }


FAKE_GEMINI_CONFIG = web.AppKey("fake_gemini_config", FakeGeminiConfig)
FAKE_GEMINI_RECORD = web.AppKey("fake_gemini_record", FakeGeminiRecord)


def create_fake_gemini_app(config: FakeGeminiConfig) -> web.Application:
    app = web.Application()
    app[FAKE_GEMINI_CONFIG] = config
    app[FAKE_GEMINI_RECORD] = FakeGeminiRecord()
    app.router.add_post("/{version}/models/{call}", _handle_call)
    app.router.add_get("/_fake/record", _handle_record)
    return app


@dataclass(frozen=True, slots=True)
class FakeGeminiServer:
    base_url: str
    app: web.Application

    @property
    def record(self) -> FakeGeminiRecord:
        return self.app[FAKE_GEMINI_RECORD]


@asynccontextmanager
async def serve_fake_gemini(config: FakeGeminiConfig) -> AsyncIterator[FakeGeminiServer]:
    """Serve the fake on ``config.host:config.port`` (port 0 picks a free one)."""
    app = create_fake_gemini_app(config)
    # handler_cancellation: a handler learns at once that its client went away.
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port)
        await site.start()
        host, port = runner.addresses[0][:2]
        host = f"[{host}]" if ":" in host else host
        yield FakeGeminiServer(base_url=f"http://{host}:{port}", app=app)
    finally:
        await runner.cleanup()


async def run_fake_gemini(
    settings: FakeSettings, *, on_ready: Callable[[FakeGeminiServer], object] | None = None
) -> None:
    """Serve the fake until cancelled (``amplify-stream fake gemini``)."""
    config = FakeGeminiConfig.from_settings(settings)
    async with serve_fake_gemini(config) as server:
        log.info("fake Gemini on %s (fault: %s)", server.base_url, config.fault)
        if on_ready is not None:
            on_ready(server)
        await asyncio.Event().wait()


async def _handle_record(request: web.Request) -> web.Response:
    """The record, for tests that run the fake as its own process."""
    return web.json_response(request.app[FAKE_GEMINI_RECORD].summary())


async def _handle_call(request: web.Request) -> web.StreamResponse:
    config = request.app[FAKE_GEMINI_CONFIG]
    record = request.app[FAKE_GEMINI_RECORD]
    model_name, _, method = request.match_info["call"].rpartition(":")
    if refusal := _refuse(request, config, model_name, method):
        record.rejected += 1
        return refusal
    try:
        body = await request.json()
    except ValueError:
        record.rejected += 1
        return json_error(400, "Invalid JSON payload received.")
    if not isinstance(body, dict) or not body.get("contents"):
        record.rejected += 1
        return json_error(400, "* GenerateContentRequest.contents: contents is not specified")
    call = FakeCall(method=method, model=model_name, body=body)
    record.calls.append(call)
    try:
        if config.fault == "status" and len(record.calls) <= config.fault_count:
            call.status, call.state = config.fault_status, "completed"
            return json_error(config.fault_status)
        answer = Answer.build(
            body,
            model_name,
            len(record.calls),
            bad_object=config.fault == "bad_object",
            misquote=config.fault == "misquote",
        )
        if method == "generateContent":
            return await answer_unary(request, config, call, answer)
        return await answer_stream(request, config, call, answer)
    finally:
        # Cancelled (the client went away with handler_cancellation on) or anything else.
        if call.state == "open":
            call.state = "disconnected"
        call.ended_at = time.time()


def _refuse(
    request: web.Request, config: FakeGeminiConfig, model_name: str, method: str
) -> web.Response | None:
    key = request.headers.get("x-goog-api-key") or request.query.get("key")
    if not key:
        return json_error(
            403,
            "Method doesn't allow unregistered callers (callers without established "
            "identity). Please use API Key or other form of API consumer identity to call "
            "this API.",
        )
    if config.api_key is not None and key != config.api_key:
        return json_error(400, "API key not valid. Please pass a valid API key.")
    if method not in ("generateContent", "streamGenerateContent") or not model_name:
        return json_error(404, f"Method not found: {request.match_info['call']}")
    return None
