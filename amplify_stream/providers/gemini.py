"""The Gemini enhancement provider, through the google-genai SDK.

Two calls stream concurrently (``generate_content_stream``): the rewrite as plain text,
the analysis as structured JSON (a response schema), each finding given the moment its
object closes (``gemini_analysis.py``). Both run as tasks feeding one queue, so every
wait is bounded by the idle timeout and cancelling the consumer cancels (and awaits) both
calls, which closes their HTTP connections: the SDK only releases a stream's connection
when the task reading it is cancelled, not when the stream is ``aclose``d.

Retries: ``HttpRetryOptions`` wraps the whole request, including the opening of an async
stream (``BaseApiClient._async_request`` runs ``_async_request_once(stream=True)`` under
``tenacity.AsyncRetrying`` and the status is checked before the stream is returned), so
429/5xx at the start are retried by the SDK and no retry loop is needed here. A stream
that breaks midway is never retried: that is a ``ProviderError``. (A stream the model
ends with ``CONTINUATION``, at its per-request token limit, the SDK resumes from its
continuation token: the text goes on where it stopped, so the parser sees one text.)
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from amplify_stream.config import Settings
from amplify_stream.errors import AmplifyError, ProviderError, ProviderUnavailable
from amplify_stream.providers.base import (
    EnhancementProvider,
    EnhancementRequest,
    Piece,
    RewriteDelta,
    UsageReport,
)
from amplify_stream.providers.gemini_analysis import AnalysisStream, StoryAnalysis

RETRY_STATUSES = (429, 500, 502, 503, 504)

REWRITE_INSTRUCTION = (
    "You are a careful line editor. Rewrite the story the user sends, keeping its plot, "
    "characters, point of view, tense, voice and paragraph breaks. Make line-level edits "
    "only: tighten wordy phrasing, cut filler intensifiers and adverbs that tell, fix "
    "grammar, spelling and punctuation, sharpen vague words. Add no scenes, no dialogue "
    "and no commentary. Answer with the edited story only: plain text, no title, no "
    "preamble, no Markdown."
)
ANALYSIS_INSTRUCTION = (
    "You are a developmental editor reviewing a story for its writer. Cover only the "
    "focuses listed: plot (structure, stakes, pacing), character (motivation, consistency, "
    "showing rather than telling), dialogue (voice, tags, subtext), setting (place, time, "
    "sensory detail). Suggestions are concrete notes about one passage each; their quote "
    "is copied character for character from the story (a short excerpt, at most one "
    "sentence) so the writer's editor can highlight it; give a replacement only when it "
    "can directly replace the quote. Give exactly one insight per focus: a two-sentence "
    "summary and a few numeric metrics."
)


@dataclass(frozen=True, slots=True)
class _Delta:
    text: str


@dataclass(frozen=True, slots=True)
class _Found:
    """A chunk of the analysis: the suggestions and insights it made whole (maybe none)."""

    pieces: list[Piece]


@dataclass(frozen=True, slots=True)
class _Done:
    usage: UsageReport


@dataclass(frozen=True, slots=True)
class _Failed:
    error: Exception


_Event = _Delta | _Found | _Done | _Failed


class GeminiProvider(EnhancementProvider):
    name = "gemini"

    def __init__(self, settings: Settings) -> None:
        if settings.gemini_api_key is None:
            raise ValueError("the Gemini provider needs GEMINI_API_KEY")
        self.model = settings.gemini_model
        self._idle_timeout_s = settings.gemini_idle_timeout_s
        self._client = genai.Client(
            vertexai=False,
            api_key=settings.gemini_api_key.get_secret_value(),
            http_options=http_options(settings),
        )

    async def stream(self, request: EnhancementRequest) -> AsyncIterator[Piece]:
        """Deltas, suggestions and insights as they come (neither call waits for the
        other), then one usage report.

        Close the iterator (``contextlib.aclosing``) or cancel the consuming task to stop:
        either cancels and awaits both calls."""
        queue: asyncio.Queue[_Event] = asyncio.Queue()
        tasks = [asyncio.create_task(self._analyse(request, queue), name="gemini-analysis")]
        if request.rewrite:
            tasks.append(asyncio.create_task(self._rewrite(request, queue), name="gemini-rewrite"))
        # Should the consumer be cancelled while it is not awaiting us (between pieces),
        # stop the calls at once rather than when this generator is finally closed.
        consumer = asyncio.current_task()
        stop_calls = _canceller(tasks)
        if consumer is not None:
            consumer.add_done_callback(stop_calls)
        started = False
        usages: list[UsageReport] = []
        held: _Event | None = None
        try:
            while len(usages) < len(tasks):
                if held is not None:
                    event, held = held, None
                else:
                    event = await self._next(queue)
                if isinstance(event, _Failed):
                    raise _provider_error(event.error, started=started)
                if isinstance(event, _Delta):
                    started = True
                    # Pieces that are already here (a busy loop read several chunks at
                    # once) go out as one: no waiting for more, only less per-piece work
                    # downstream when the worker falls behind.
                    text = event.text
                    while held is None and not queue.empty():
                        following = queue.get_nowait()
                        if isinstance(following, _Delta):
                            text += following.text
                        else:
                            held = following
                    yield RewriteDelta(text)
                elif isinstance(event, _Found):
                    # A finding out is output too: a failure after it is not retryable.
                    started = started or bool(event.pieces)
                    for piece in event.pieces:
                        yield piece
                else:
                    usages.append(event.usage)
            yield UsageReport(
                input_tokens=sum(u.input_tokens for u in usages),
                output_tokens=sum(u.output_tokens for u in usages),
            )
        finally:
            if consumer is not None:
                consumer.remove_done_callback(stop_calls)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def aclose(self) -> None:
        await self._client.aio.aclose()
        self._client.close()

    async def _next(self, queue: asyncio.Queue[_Event]) -> _Event:
        try:
            async with asyncio.timeout(self._idle_timeout_s):
                return await queue.get()
        except TimeoutError:
            raise ProviderError(
                f"Gemini stalled: nothing received for {self._idle_timeout_s:g} s"
            ) from None

    async def _rewrite(self, request: EnhancementRequest, out: asyncio.Queue[_Event]) -> None:
        config = types.GenerateContentConfig(
            system_instruction=REWRITE_INSTRUCTION, temperature=0.3
        )
        try:
            stream = await self._client.aio.models.generate_content_stream(
                model=self.model, contents=_prompt(request), config=config
            )
            usage: types.GenerateContentResponseUsageMetadata | None = None
            finish: types.FinishReason | None = None
            async for chunk in stream:
                _check_blocked(chunk, "rewrite")
                usage = chunk.usage_metadata or usage  # running totals: keep the last
                finish = _finish_reason(chunk) or finish
                if text := _text_of(chunk):
                    out.put_nowait(_Delta(text))
            _check_finished(finish, "rewrite")
            out.put_nowait(_Done(_usage(usage)))
        except Exception as exc:  # the consumer maps it: it knows whether deltas went out
            out.put_nowait(_Failed(exc))

    async def _analyse(self, request: EnhancementRequest, out: asyncio.Queue[_Event]) -> None:
        """Streamed, like the rewrite: each finding goes out once its object is whole."""
        config = types.GenerateContentConfig(
            system_instruction=ANALYSIS_INSTRUCTION,
            temperature=0.3,
            response_mime_type="application/json",
            response_schema=StoryAnalysis,
        )
        analysis = AnalysisStream(request.focus)
        try:
            stream = await self._client.aio.models.generate_content_stream(
                model=self.model, contents=_prompt(request, with_focus=True), config=config
            )
            usage: types.GenerateContentResponseUsageMetadata | None = None
            finish: types.FinishReason | None = None
            async for chunk in stream:
                _check_blocked(chunk, "analysis")
                usage = chunk.usage_metadata or usage
                finish = _finish_reason(chunk) or finish
                # Every chunk, whole findings or none: the idle timeout hears it alive.
                out.put_nowait(_Found(analysis.feed(_text_of(chunk))))
            _check_finished(finish, "analysis")
            analysis.finish()
            out.put_nowait(_Done(_usage(usage)))
        except Exception as exc:
            out.put_nowait(_Failed(exc))


def http_options(settings: Settings) -> types.HttpOptions:
    """``gemini_retry_attempts`` counts every try, the first included (tenacity's way)."""
    return types.HttpOptions(
        base_url=settings.gemini_base_url,
        api_version="v1beta",  # the SDK's default is v1, which lacks some config fields
        retry_options=types.HttpRetryOptions(
            attempts=max(1, settings.gemini_retry_attempts),
            initial_delay=settings.gemini_retry_initial_delay_s,
            max_delay=settings.gemini_retry_max_delay_s,
            exp_base=2.0,
            # The SDK's jitter is a whole second by default; keep it in scale with delays.
            jitter=settings.gemini_retry_initial_delay_s,
            http_status_codes=list(RETRY_STATUSES),
        ),
    )


def _prompt(request: EnhancementRequest, *, with_focus: bool = False) -> str:
    lines = [f"Focus: {', '.join(request.focus)}"] if with_focus else []
    if request.title:
        lines.append(f"Title: {request.title}")
    # The tags tell the model (and the fake) exactly where the story starts and ends.
    lines.append(f"<story>\n{request.text}\n</story>")
    return "\n".join(lines)


def _text_of(response: types.GenerateContentResponse) -> str:
    if not response.candidates or response.candidates[0].content is None:
        return ""
    parts = response.candidates[0].content.parts or []
    return "".join(p.text for p in parts if p.text and not p.thought)


def _finish_reason(response: types.GenerateContentResponse) -> types.FinishReason | None:
    return response.candidates[0].finish_reason if response.candidates else None


def _check_blocked(response: types.GenerateContentResponse, what: str) -> None:
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason is not None:
        raise ProviderError(f"Gemini refused the {what}: {feedback.block_reason.value}")


def _check_finished(finish: types.FinishReason | None, what: str) -> None:
    # Anything but STOP (MAX_TOKENS, SAFETY, no reason at all) leaves the text cut short.
    if finish != types.FinishReason.STOP:
        reason = finish.value if finish is not None else "no finish reason"
        raise ProviderError(f"Gemini's {what} ended early ({reason})")


def _usage(usage: types.GenerateContentResponseUsageMetadata | None) -> UsageReport:
    if usage is None:
        return UsageReport(input_tokens=0, output_tokens=0)
    output = (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)
    return UsageReport(input_tokens=usage.prompt_token_count or 0, output_tokens=output)


def _provider_error(exc: Exception, *, started: bool) -> AmplifyError:
    """Overload or an unreachable service before any output is worth retrying later;
    anything else, or anything once deltas went out, is a provider failure."""
    if isinstance(exc, AmplifyError):
        return exc
    error: AmplifyError
    if isinstance(exc, genai_errors.APIError):
        what = f"Gemini answered {exc.code} {exc.status}: {exc.message}"
        if not started and exc.code in RETRY_STATUSES:
            error = ProviderUnavailable(what, retry_after=_retry_after(exc.details))
        else:
            error = ProviderError(what)
    elif isinstance(exc, aiohttp.ClientConnectionError) and not started:
        error = ProviderUnavailable(f"Gemini is unreachable: {exc!r}")
    elif isinstance(exc, aiohttp.ClientError):
        error = ProviderError(f"the Gemini stream broke: {exc!r}")
    else:
        error = ProviderError(f"the Gemini call failed: {exc!r}")
    error.__cause__ = exc
    return error


def _retry_after(details: Any) -> float | None:
    """Google's ``RetryInfo.retryDelay`` ("12s"), when the error body carries one."""
    body = details.get("error", details) if isinstance(details, dict) else {}
    for item in body.get("details") or []:
        delay = item.get("retryDelay") if isinstance(item, dict) else None
        if isinstance(delay, str) and (m := re.fullmatch(r"(\d+(?:\.\d+)?)s", delay)):
            return float(m.group(1))
    return None


def _canceller(tasks: list[asyncio.Task[None]]) -> Callable[[asyncio.Task[Any]], None]:
    def cancel(_: asyncio.Task[Any]) -> None:
        for task in tasks:
            task.cancel()

    return cancel
