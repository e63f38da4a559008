"""The Gemini enhancement provider, through the google-genai SDK.

Two calls stream concurrently (read by ``gemini_stream.py``): the rewrite as plain text,
the analysis as structured JSON (a response schema), each finding given the moment its
object closes (``gemini_analysis.py``). Both run as tasks feeding one queue, so every
wait is bounded by the idle timeout and cancelling the consumer cancels (and awaits) both
calls, which closes their HTTP connections: the SDK only releases a stream's connection
when the task reading it is cancelled, not when the stream is ``aclose``d.

Client setup, the streamed calls, retries and error mapping: ``gemini_client.py``.
(A stream the model ends with ``CONTINUATION``, at its per-request token limit, the SDK
resumes from its continuation token, ``gemini_stream.py``: the text goes on where it
stopped, so the parser sees one text.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from google.genai import types

from amplify_stream.config.groups import GeminiSettings
from amplify_stream.errors import ProviderError
from amplify_stream.providers.base import (
    EnhancementProvider,
    EnhancementRequest,
    Piece,
    RewriteDelta,
    UsageReport,
)
from amplify_stream.providers.gemini_analysis import (
    EDITOR_STANDARD,
    FOCUS_GUIDE,
    AnalysisStream,
    StoryAnalysis,
)
from amplify_stream.providers.gemini_client import (
    close_client,
    create_client,
    provider_error,
    stream_findings,
    stream_text,
)

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
    f"focuses listed: {FOCUS_GUIDE}. Suggestions are concrete notes about one passage "
    "each; their quote is copied character for character from the story (a short "
    "excerpt, at most one sentence) so the writer's editor can highlight it; give a "
    "replacement only when it can directly replace the quote. Give exactly one insight "
    f"per focus: a two-sentence summary and a few numeric metrics. {EDITOR_STANDARD}"
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

    def __init__(self, settings: GeminiSettings) -> None:
        self._client = create_client(settings)
        self.model = settings.gemini_model
        self._idle_timeout_s = settings.gemini_idle_timeout_s
        # Kept, not made per call: the stream reader converts a config once (gemini_stream).
        self._rewrite_config = types.GenerateContentConfig(
            system_instruction=REWRITE_INSTRUCTION, temperature=0.3
        )
        self._analysis_config = types.GenerateContentConfig(
            system_instruction=ANALYSIS_INSTRUCTION,
            temperature=0.3,
            response_mime_type="application/json",
            response_schema=StoryAnalysis,
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
                    raise provider_error(event.error, started=started)
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
        await close_client(self._client)

    async def _next(self, queue: asyncio.Queue[_Event]) -> _Event:
        if not queue.empty():
            return queue.get_nowait()  # no timer to arm for what is already here
        try:
            async with asyncio.timeout(self._idle_timeout_s):
                return await queue.get()
        except TimeoutError:
            raise ProviderError(
                f"Gemini stalled: nothing received for {self._idle_timeout_s:g} s"
            ) from None

    async def _rewrite(self, request: EnhancementRequest, out: asyncio.Queue[_Event]) -> None:
        config = self._rewrite_config
        try:
            async for text in stream_text(
                self._client, self.model, _prompt(request), config, "rewrite"
            ):
                if isinstance(text, UsageReport):
                    out.put_nowait(_Done(text))
                elif text:
                    out.put_nowait(_Delta(text))
        except Exception as exc:  # the consumer maps it: it knows whether deltas went out
            out.put_nowait(_Failed(exc))

    async def _analyse(self, request: EnhancementRequest, out: asyncio.Queue[_Event]) -> None:
        """Streamed, like the rewrite: each finding goes out once its object is whole."""
        config = self._analysis_config
        analysis = AnalysisStream(request.focus)
        prompt = _prompt(request, with_focus=True)
        try:
            async for found in stream_findings(
                self._client, self.model, prompt, config, analysis, "analysis"
            ):
                # Every chunk, whole findings or none: the idle timeout hears it alive.
                out.put_nowait(_Done(found) if isinstance(found, UsageReport) else _Found(found))
        except Exception as exc:
            out.put_nowait(_Failed(exc))


def _prompt(request: EnhancementRequest, *, with_focus: bool = False) -> str:
    lines = [f"Focus: {', '.join(request.focus)}"] if with_focus else []
    if request.title:
        lines.append(f"Title: {request.title}")
    # The tags tell the model (and the fake) exactly where the story starts and ends.
    lines.append(f"<story>\n{request.text}\n</story>")
    return "\n".join(lines)


def _canceller(tasks: list[asyncio.Task[None]]) -> Callable[[asyncio.Task[Any]], None]:
    def cancel(_: asyncio.Task[Any]) -> None:
        for task in tasks:
            task.cancel()

    return cancel
