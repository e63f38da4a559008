"""One attempt at one story's enhancement, in its phases:

1. ``start``: the reset (from the second attempt on) and ``enhancement.started``,
   acknowledged before anything else of the attempt (``consumers/attempts.py``);
2. ``stream_pieces``: the provider's stream, each piece to the stream topic as it comes
   and each completed sentence to the segments topic (run in a task of its own, so a
   cancel stops it);
3. ``finish``: completed, failed or cancelled, as the provider stream ended.

The end is not shielded from a hand-back: a worker that loses the partition must stop at
once. Cut anywhere, the end is safe: the outcomes are one transaction (fenced), and the
next owner finishes what it finds published.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from amplify_stream.bus import is_bus_error
from amplify_stream.documents.ignores import Ignores
from amplify_stream.errors import AmplifyError
from amplify_stream.events import (
    EnhancementCompleted,
    EnhancementCompletedOutcome,
    EnhancementDelta,
    EnhancementFailedOutcome,
    EnhancementReset,
    EnhancementStarted,
    EnhancementTimings,
    ErrorEvent,
    ErrorInfo,
    Insight,
    InsightFields,
    StoryStatus,
    StorySubmitted,
    Suggestion,
    SuggestionFields,
    Usage,
    UserPreferences,
    ms_since,
)
from amplify_stream.metrics import Metrics
from amplify_stream.providers.base import (
    EnhancementProvider,
    EnhancementRequest,
    FindingSkipped,
    InsightFound,
    Piece,
    RewriteDelta,
    SuggestionFound,
    UsageReport,
)
from amplify_stream.text.spans import Utf16Index, locate
from consumers.attempts import start_attempt
from consumers.completion import complete_story
from consumers.segments import SegmentWriter
from consumers.writes import StoryWrites
from producers.lease import PartitionLost

log = logging.getLogger(__name__)

RESTARTED = "the worker running this story stopped; starting it again"


class EnhancementRun:
    """One attempt at one story: where it writes, and what the provider produced so far."""

    def __init__(
        self,
        story: StorySubmitted,
        attempt: int,
        provider: EnhancementProvider,
        writes: StoryWrites,
        metrics: Metrics,
        *,
        pipelined: bool,
    ) -> None:
        self.story = story
        self.attempt = attempt
        self.provider = provider
        self.metrics = metrics
        self.stream = writes.stream()
        # Narration on: each sentence of the text goes to the narrator as it completes.
        self.segments = (
            SegmentWriter(writes.segments(), story, attempt, pipelined=pipelined)
            if story.audio
            else None
        )
        self.outcomes = writes.outcomes
        self.pieces: list[str] = []
        self.suggestions: list[SuggestionFields] = []
        # Where each note (rule, quote, message) was placed: the same note again goes to
        # the next place its words hold, and is a duplicate when they hold no other.
        self._placed: dict[tuple[str | None, str, str], set[tuple[int, int]]] = {}
        self.insights: list[InsightFields] = []
        self.usage = Usage()
        self._started = time.monotonic()
        self._queue_ms = ms_since(story.at)
        self._first_token_ms: float | None = None
        self._first_suggestion_ms: float | None = None
        self._utf16 = Utf16Index(story.text)
        # The writer's preferences (rules off, vouched words), on either provider.
        said = story.ignores
        self._ignores = Ignores(
            user=UserPreferences(rules_off=said.rules_off, words=said.words)
            if said is not None
            else UserPreferences()
        )

    @property
    def text(self) -> str:
        # Without a rewrite the story goes on (to narration, to the store) as submitted.
        return "".join(self.pieces) if self.story.rewrite else self.story.text

    def timings(self) -> EnhancementTimings:
        return EnhancementTimings(
            queue_ms=self._queue_ms,
            first_token_ms=self._first_token_ms,
            first_suggestion_ms=self._first_suggestion_ms,
            total_ms=self._queue_ms + (time.monotonic() - self._started) * 1000,
        )

    async def start(self) -> None:
        story = self.story
        await start_attempt(
            self.stream,
            story.story_id,
            self.attempt,
            reset=EnhancementReset,
            reason=RESTARTED,
            started=lambda: EnhancementStarted(
                story_id=story.story_id,
                provider=self.provider.name,
                model=self.provider.model,
                attempt=self.attempt,
            ),
        )

    async def stream_pieces(self) -> None:
        story, stream = self.story, self.stream
        request = EnhancementRequest(
            story_id=story.story_id,
            text=story.text,
            focus=story.focus,
            rewrite=story.rewrite,
            title=story.title,
        )
        if self.segments is not None and not story.rewrite:
            # Narrating the story as submitted: it can start before the analysis ends.
            await self.segments.write(story.text)
        async for piece in self.provider.stream(request):
            if self._first_token_ms is None and _first_output(piece, story.rewrite):
                self._first_token_ms = self._since_submitted_ms()
                self.metrics.first_token_ms.observe(self._first_token_ms)
            if isinstance(piece, RewriteDelta):
                if not piece.text:
                    continue
                self.pieces.append(piece.text)
                await stream.publish(
                    EnhancementDelta(story_id=story.story_id, text=piece.text, attempt=self.attempt)
                )
                if self.segments is not None:
                    await self.segments.write(piece.text)
            elif isinstance(piece, SuggestionFound):
                if self._ignores.hides(
                    piece.rule, piece.focus, piece.message, piece.quote, lambda: ""
                ):
                    continue  # a rule the writer turned off, or about a word they vouch for
                if self._first_suggestion_ms is None:
                    self._first_suggestion_ms = self._since_submitted_ms()
                    self.metrics.first_suggestion_ms.observe(self._first_suggestion_ms)
                placed = self._placed.setdefault((piece.rule, piece.quote, piece.message), set())
                fields = _suggestion(piece, story.text, self._utf16, placed)
                if fields is None:
                    continue  # the same note again, and its words hold no other place
                self.suggestions.append(fields)
                await stream.publish(
                    Suggestion(story_id=story.story_id, attempt=self.attempt, **fields.model_dump())
                )
            elif isinstance(piece, InsightFound):
                insight = InsightFields(
                    focus=piece.focus, summary=piece.summary, metrics=piece.metrics or None
                )
                self.insights.append(insight)
                await stream.publish(
                    Insight(story_id=story.story_id, attempt=self.attempt, **insight.model_dump())
                )
            elif isinstance(piece, FindingSkipped):
                self.metrics.findings_skipped.labels(self.provider.name, piece.kind).inc()
                log.warning(
                    "story %s: a %s from %s was left out: %s",
                    story.story_id,
                    piece.kind,
                    self.provider.name,
                    piece.error,
                )
            elif isinstance(piece, UsageReport):
                self.usage = Usage(
                    input_tokens=piece.input_tokens, output_tokens=piece.output_tokens
                )

    def _since_submitted_ms(self) -> float:
        return self._queue_ms + (time.monotonic() - self._started) * 1000

    async def settle(self) -> None:
        """After a failure (on the bus: the worker runs the story again): the records of
        this run the producer still holds land or fail first, so none may come after the
        next attempt's reset."""
        await self.stream.settle()
        if self.segments is not None:
            await self.segments.settle()


def _first_output(piece: Piece, rewrite: bool) -> bool:
    """Whether ``piece`` can be the first token: the rewrite's, or without a rewrite the
    analysis' first finding."""
    if rewrite:
        return isinstance(piece, RewriteDelta) and bool(piece.text)
    return isinstance(piece, SuggestionFound | InsightFound)


def _suggestion(
    found: SuggestionFound, text: str, utf16: Utf16Index, placed: set[tuple[int, int]]
) -> SuggestionFields | None:
    """``found`` placed in ``text``; None for a duplicate (``placed``: where the same note
    went before, updated here)."""
    span: tuple[int, int] | None
    if found.start is not None and text[found.start : found.start + len(found.quote)] == (
        found.quote
    ):
        span = (found.start, found.start + len(found.quote))
    else:
        span = locate(text, found.quote, avoid=placed)
        if span is None and placed:
            return None
    start, end = span if span else (None, None)
    if span is not None:
        placed.add(span)
    return SuggestionFields(
        id=uuid.uuid4().hex[:12],
        focus=found.focus,
        # The quote is what the client highlights: exactly the slice of the text.
        quote=text[start:end] if span else found.quote,
        start=start,
        end=end,
        start_utf16=utf16.offset(start) if start is not None else None,
        end_utf16=utf16.offset(end) if end is not None else None,
        message=found.message,
        replacement=found.replacement,
        rule=found.rule,
    )


# ---------------------------------------------------------------- the end of a run


async def finish(run: EnhancementRun, streaming: asyncio.Task[None]) -> None:
    """End the run as its provider stream (``streaming``, done) ended."""
    if streaming.cancelled():
        await finish_cancelled(run)
        return
    if (exc := streaming.exception()) is not None:
        if is_bus_error(exc) or isinstance(exc, PartitionLost):
            raise exc  # not the story's failure: the worker (or the new owner) reruns it
        if not isinstance(exc, AmplifyError):
            log.error("enhancement crashed", exc_info=exc, extra={"story_id": run.story.story_id})
            exc = AmplifyError("enhancement failed")
        await _finish_failed(run, exc)
        return
    await _finish_completed(run)


async def finish_cancelled(run: EnhancementRun) -> None:
    error = ErrorInfo(code="cancelled", message="the story was cancelled")
    await _end(run, [], "cancelled", error)


async def _finish_completed(run: EnhancementRun) -> None:
    story = run.story
    # Told to the client once its outcome is committed: the rewrite it hears is done
    # is durable (and a worker taking the story over from here finds it done).
    completed = EnhancementCompleted(
        story_id=story.story_id,
        text=run.text,
        suggestions=len(run.suggestions),
        usage=run.usage,
        attempt=run.attempt,
    )
    outcome = EnhancementCompletedOutcome(
        story_id=story.story_id,
        user_id=story.user_id,
        attempt=run.attempt,
        provider=run.provider.name,
        model=run.provider.model,
        input_chars=len(story.text),
        text=run.text,
        suggestions=run.suggestions,
        insights=run.insights,
        usage=run.usage,
        timings=run.timings(),
    )
    if run.segments is not None:
        await run.segments.flush()
    await _end(run, [outcome], "completed", None, completed)


async def _finish_failed(run: EnhancementRun, exc: AmplifyError) -> None:
    story = run.story
    error = ErrorInfo(code=exc.code, message=exc.message)
    run.metrics.provider_errors.labels(run.provider.name, exc.code).inc()
    await run.stream.publish(
        ErrorEvent(
            code=exc.code,
            message=exc.message,
            retryable=exc.retryable,
            story_id=story.story_id,
            request_id=story.request_id,
        )
    )
    failed = EnhancementFailedOutcome(
        story_id=story.story_id,
        user_id=story.user_id,
        attempt=run.attempt,
        error=error,
        attempts=run.attempt,
    )
    await _end(run, [failed], "failed", error)


async def _end(
    run: EnhancementRun,
    outcomes: list[EnhancementCompletedOutcome | EnhancementFailedOutcome],
    status: StoryStatus,
    error: ErrorInfo | None,
    completed: EnhancementCompleted | None = None,
) -> None:
    story, stream = run.story, run.stream
    if run.segments is not None:
        # Narration is on: the narrator ends the story once the audio is done. Every
        # sentence is on the bus before the outcome says the rewrite is done.
        await run.segments.drain()
        if outcomes:
            await run.outcomes.publish(outcomes)
        if completed is not None:
            await stream.publish(completed)
        await stream.drain()
        await run.segments.end(status, error)
        return
    await complete_story(
        run.outcomes,
        stream,
        story_id=story.story_id,
        user_id=story.user_id,
        attempt=run.attempt,
        submitted_at=story.at,
        status=status,
        error=error,
        results=outcomes,
        announce=[completed] if completed is not None else [],
        metrics=run.metrics,
    )
