"""The enhancer: runs each submitted story through the enhancement provider, streams the
pieces to the stream topic as they come, and publishes the result to the outcome topic."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from amplify_stream.bus import is_bus_error
from amplify_stream.bus.base import Bus, Producer, Record
from amplify_stream.config import Settings
from amplify_stream.errors import AmplifyError
from amplify_stream.events import (
    Command,
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
    NarrationCancelled,
    NarrationEnd,
    NarrationSegment,
    StoryCancelled,
    StoryStatus,
    StorySubmitted,
    Suggestion,
    SuggestionFields,
    Usage,
    command_adapter,
    ms_since,
)
from amplify_stream.metrics import Metrics
from amplify_stream.providers.base import (
    EnhancementProvider,
    EnhancementRequest,
    InsightFound,
    RewriteDelta,
    SuggestionFound,
    UsageReport,
)
from amplify_stream.text.sentences import SentenceStream
from amplify_stream.text.spans import Utf16Index, locate
from amplify_stream.topics import Topics
from consumers.cancels import RecentCancels
from consumers.completion import complete_story, repeat_completion
from consumers.history import StoryHistory, story_history
from consumers.worker import Worker
from producers.lease import PartitionLost
from producers.outcomes import OutcomePublisher
from producers.stream import StreamPublisher

log = logging.getLogger(__name__)


class Enhancer(Worker[Command]):
    def __init__(
        self,
        bus: Bus,
        settings: Settings,
        provider: EnhancementProvider,
        *,
        stream_producer: Producer,
        metrics: Metrics | None = None,
    ) -> None:
        self.topics = Topics.from_settings(settings)
        super().__init__(
            bus,
            topics=[self.topics.stories],
            group_id=f"{settings.topic_prefix}.enhancer",
            dlq_topic=self.topics.dlq,
            adapter=command_adapter,
            concurrency=settings.enhancer_concurrency,
            shutdown_grace_s=settings.worker_shutdown_grace_s,
            metrics=metrics,
            outcomes_topic=self.topics.outcomes,
        )
        self._provider = provider
        self._settings = settings
        self._stream_producer = stream_producer
        # Stories whose provider stream runs now, by the task consuming it.
        self._streaming: dict[str, asyncio.Task[None]] = {}
        # Cancels asked for (bounded): they hold across a story's history read and its
        # retries, and a replayed story that was cancelled ends cancelled.
        self._cancel_requested = RecentCancels()

    async def handle(self, event: Command, record: Record) -> None:
        writes = _Writes(self, record, event.story_id, event.user_id)
        if isinstance(event, StoryCancelled):
            await self._cancel_story(event, writes)
            return
        attempt = 1
        if self.may_have_run(record):
            history = await story_history(self._bus, self.topics, event.story_id, event)
            if await self._already_done(event, history, writes):
                return
            attempt = history.stream["enhancement.started"] + 1
        log.info("story %s started (attempt %d)", event.story_id, attempt)
        await self._enhance(event, writes, attempt)

    async def _cancel_story(self, event: StoryCancelled, writes: _Writes) -> None:
        self._cancel_requested.add(event.story_id)
        if (task := self._streaming.get(event.story_id)) is not None:
            task.cancel()
        # The narrator may still be speaking a story whose rewrite is done: tell it too.
        segments = writes.segments()
        await segments.publish(NarrationCancelled(story_id=event.story_id, user_id=event.user_id))
        await segments.drain()

    async def _already_done(
        self, story: StorySubmitted, history: StoryHistory, writes: _Writes
    ) -> bool:
        """Finish what a previous run left, when its result is already published."""
        if (done := history.completed) is not None:
            if not history.stream["story.completed"]:
                await repeat_completion(writes.stream(), story.story_id, done)
            return True
        result = history.outcomes.get("enhancement.completed") or history.outcomes.get(
            "enhancement.failed"
        )
        if story.audio and result is not None:
            # Our part was done; the narrator may not have heard the end of it.
            failed = result["type"] == "enhancement.failed"
            await _Segments(writes.segments(), story, result["attempt"]).end(
                "failed" if failed else "completed",
                ErrorInfo(**result["error"]) if failed else None,
            )
            return True
        return False

    async def _enhance(self, story: StorySubmitted, writes: _Writes, attempt: int = 1) -> None:
        stream = writes.stream()
        segments = (
            _Segments(
                writes.segments(),
                story,
                attempt,
                pipelined=not self._settings.narrate_after_rewrite,
            )
            if story.audio
            else None
        )
        run = _Run(story, attempt, self._provider, segments, self.metrics, writes.outcomes)
        try:
            await self._attempt(story, run, stream)
        except Exception:
            # Failed (on the bus: the worker runs the story again). Records of this run
            # the producer still holds land or fail first: none may come after the next
            # attempt's reset.
            await stream.settle()
            if segments is not None:
                await segments.settle()
            raise

    async def _attempt(self, story: StorySubmitted, run: _Run, stream: StreamPublisher) -> None:
        attempt = run.attempt
        if story.story_id in self._cancel_requested:
            # Cancelled before its provider stream began (the cancel was handled while
            # this record waited for its history or for the bus).
            await self._finish_cancelled(story, run, stream)
            return
        if attempt > 1:
            await stream.publish(
                EnhancementReset(
                    story_id=story.story_id,
                    attempt=attempt,
                    reason="the worker running this story stopped; starting it again",
                )
            )
        await stream.publish(
            EnhancementStarted(
                story_id=story.story_id,
                provider=self._provider.name,
                model=self._provider.model,
                attempt=attempt,
            )
        )
        # On the broker before anything of the attempt: a worker that takes the story
        # over counts this attempt then, and numbers its own after it.
        await stream.drain()
        # The provider stream runs in a task of its own: a cancel stops it (and closes
        # its connection) without touching this one, which then ends the story.
        execute = asyncio.create_task(run.execute(stream), name=f"stream:{story.story_id}")
        self._streaming[story.story_id] = execute
        try:
            await asyncio.wait({execute})
        except asyncio.CancelledError:
            # Handed back to the group (shutdown, rebalance): no outcome.
            execute.cancel()
            await asyncio.gather(execute, return_exceptions=True)
            raise
        finally:
            self._streaming.pop(story.story_id, None)
        # The end of a run is not shielded from a hand-back: a worker that loses the
        # partition must stop at once. Cut anywhere, the end is safe: the outcomes are
        # one transaction (fenced), and the next owner finishes what it finds published.
        if execute.cancelled():
            await self._finish_cancelled(story, run, stream)
            return
        if (exc := execute.exception()) is not None:
            if is_bus_error(exc) or isinstance(exc, PartitionLost):
                raise exc  # not the story's failure: the worker (or the new owner) reruns it
            if not isinstance(exc, AmplifyError):
                log.error("enhancement crashed", exc_info=exc, extra={"story_id": story.story_id})
                exc = AmplifyError("enhancement failed")
            await self._finish_failed(story, run, stream, exc)
            return
        await self._finish_completed(story, run, stream)

    async def _finish_completed(
        self, story: StorySubmitted, run: _Run, stream: StreamPublisher
    ) -> None:
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
            provider=self._provider.name,
            model=self._provider.model,
            input_chars=len(story.text),
            text=run.text,
            suggestions=run.suggestions,
            insights=run.insights,
            usage=run.usage,
            timings=run.timings(),
        )
        if run.segments is not None:
            await run.segments.flush()
        await self._complete(story, run, stream, [outcome], "completed", None, completed)

    async def _finish_failed(
        self, story: StorySubmitted, run: _Run, stream: StreamPublisher, exc: AmplifyError
    ) -> None:
        error = ErrorInfo(code=exc.code, message=exc.message)
        self.metrics.provider_errors.labels(self._provider.name, exc.code).inc()
        await stream.publish(
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
        await self._complete(story, run, stream, [failed], "failed", error)

    async def _finish_cancelled(
        self, story: StorySubmitted, run: _Run, stream: StreamPublisher
    ) -> None:
        error = ErrorInfo(code="cancelled", message="the story was cancelled")
        await self._complete(story, run, stream, [], "cancelled", error)

    async def _complete(
        self,
        story: StorySubmitted,
        run: _Run,
        stream: StreamPublisher,
        outcomes: list[EnhancementCompletedOutcome | EnhancementFailedOutcome],
        status: StoryStatus,
        error: ErrorInfo | None,
        completed: EnhancementCompleted | None = None,
    ) -> None:
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
            metrics=self.metrics,
        )


class _Writes:
    """Where one record's work writes: every publisher behind the lease of the record's
    partition, outcomes through the partition's own (fenced) producer."""

    def __init__(self, enhancer: Enhancer, record: Record, story_id: str, user_id: str) -> None:
        self._producer = enhancer._stream_producer
        self._topics = enhancer.topics
        self._lease = enhancer.ownership(record)
        self._story_id = story_id
        self._user_id = user_id
        self.outcomes = enhancer.outcomes(record)

    def stream(self) -> StreamPublisher:
        return self._publisher(self._topics.stream)

    def segments(self) -> StreamPublisher:
        return self._publisher(self._topics.segments)

    def _publisher(self, topic: str) -> StreamPublisher:
        return StreamPublisher(self._producer, topic, self._story_id, self._user_id, self._lease)


class _Segments:
    """Completed sentences of the text to narrate, published as soon as they complete."""

    def __init__(
        self,
        publisher: StreamPublisher,
        story: StorySubmitted,
        attempt: int,
        *,
        pipelined: bool = True,
    ) -> None:
        self._publisher = publisher
        self._story = story
        self._attempt = attempt
        self._sentences = SentenceStream()
        self._count = 0
        # Not pipelined (the benchmark's serial baseline): sentences wait for the end.
        self._pipelined = pipelined
        self._held: list[tuple[int, str]] = []

    async def feed(self, text: str) -> None:
        sentences = self._sentences.feed(text)
        if self._pipelined:
            await self._publish(sentences)
        else:
            self._held += sentences

    async def settle(self) -> None:
        await self._publisher.settle()

    async def flush(self) -> None:
        held, self._held = self._held, []
        await self._publish(held + self._sentences.finish())

    async def _publish(self, sentences: list[tuple[int, str]]) -> None:
        story = self._story
        for start, sentence in sentences:
            await self._publisher.publish(
                NarrationSegment(
                    story_id=story.story_id,
                    user_id=story.user_id,
                    attempt=self._attempt,
                    submitted_at=story.at,
                    stream_offset=story.stream_offset,
                    outcomes_offset=story.outcomes_offset,
                    index=self._count,
                    text=sentence,
                    start=start,
                    voice=story.voice,
                )
            )
            self._count += 1

    async def drain(self) -> None:
        await self._publisher.drain()

    async def end(self, status: StoryStatus, error: ErrorInfo | None) -> None:
        story = self._story
        await self._publisher.publish(
            NarrationEnd(
                story_id=story.story_id,
                user_id=story.user_id,
                attempt=self._attempt,
                submitted_at=story.at,
                stream_offset=story.stream_offset,
                outcomes_offset=story.outcomes_offset,
                status=status,
                error=error,
                segments=self._count,
            )
        )
        await self._publisher.drain()


class _Run:
    """One attempt at one story: what the provider produced so far."""

    def __init__(
        self,
        story: StorySubmitted,
        attempt: int,
        provider: EnhancementProvider,
        segments: _Segments | None,
        metrics: Metrics,
        outcomes: OutcomePublisher,
    ) -> None:
        self.story = story
        self.metrics = metrics
        self.outcomes = outcomes
        self.segments = segments
        self.attempt = attempt
        self.provider = provider
        self.pieces: list[str] = []
        self.suggestions: list[SuggestionFields] = []
        self.insights: list[InsightFields] = []
        self.usage = Usage()
        self._started = time.monotonic()
        self._queue_ms = ms_since(story.at)
        self._first_token_ms: float | None = None
        self._utf16 = Utf16Index(story.text)

    @property
    def text(self) -> str:
        # Without a rewrite the story goes on (to narration, to the store) as submitted.
        return "".join(self.pieces) if self.story.rewrite else self.story.text

    def timings(self) -> EnhancementTimings:
        return EnhancementTimings(
            queue_ms=self._queue_ms,
            first_token_ms=self._first_token_ms,
            total_ms=self._queue_ms + (time.monotonic() - self._started) * 1000,
        )

    async def execute(self, stream: StreamPublisher) -> None:
        story = self.story
        request = EnhancementRequest(
            story_id=story.story_id,
            text=story.text,
            focus=story.focus,
            rewrite=story.rewrite,
            title=story.title,
        )
        if self.segments is not None and not story.rewrite:
            # Narrating the story as submitted: it can start before the analysis ends.
            await self.segments.feed(story.text)
        async for piece in self.provider.stream(request):
            if self._first_token_ms is None:
                self._first_token_ms = self._queue_ms + (time.monotonic() - self._started) * 1000
                self.metrics.first_token_ms.observe(self._first_token_ms)
            if isinstance(piece, RewriteDelta):
                if not piece.text:
                    continue
                self.pieces.append(piece.text)
                await stream.publish(
                    EnhancementDelta(story_id=story.story_id, text=piece.text, attempt=self.attempt)
                )
                if self.segments is not None:
                    await self.segments.feed(piece.text)
            elif isinstance(piece, SuggestionFound):
                fields = self._suggestion(piece)
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
            elif isinstance(piece, UsageReport):
                self.usage = Usage(
                    input_tokens=piece.input_tokens, output_tokens=piece.output_tokens
                )

    def _suggestion(self, found: SuggestionFound) -> SuggestionFields:
        text = self.story.text
        span: tuple[int, int] | None
        if found.start is not None and text[found.start : found.start + len(found.quote)] == (
            found.quote
        ):
            span = (found.start, found.start + len(found.quote))
        else:
            span = locate(text, found.quote)
        start, end = span if span else (None, None)
        return SuggestionFields(
            id=uuid.uuid4().hex[:12],
            focus=found.focus,
            # The quote is what the client highlights: exactly the slice of the text.
            quote=text[start:end] if span else found.quote,
            start=start,
            end=end,
            start_utf16=self._utf16.offset(start) if start is not None else None,
            end_utf16=self._utf16.offset(end) if end is not None else None,
            message=found.message,
            replacement=found.replacement,
        )
