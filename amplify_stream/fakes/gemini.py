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
from dataclasses import dataclass

from aiohttp import web

from amplify_stream.fakes.gemini_calls import (
    FakeCall,
    FakeGeminiConfig,
    FakeGeminiRecord,
)
from amplify_stream.fakes.gemini_wire import Answer, answer_stream, answer_unary, json_error
from amplify_stream.fakes.settings import FakeSettings

log = logging.getLogger(__name__)

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
