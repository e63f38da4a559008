"""The narrator: speaks each story's sentences as the enhancer completes them, streams the
audio and word timings, keeps the whole narration, and ends the story.

Offsets: a story's first segment record stays unfinished until the story ends, so the
group never commits past a story that is still being narrated (a crash replays it
whole). Later records of a story only feed its session and finish at once.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time

from amplify_stream.audio_store import AudioStore, NarrationWriter
from amplify_stream.bus import is_bus_error
from amplify_stream.bus.base import Bus, Producer, Record
from amplify_stream.config import Settings
from amplify_stream.errors import AmplifyError, TtsUnavailable
from amplify_stream.events import (
    AudioChunk,
    AudioCompleted,
    AudioReset,
    AudioStarted,
    AudioWord,
    ErrorEvent,
    ErrorInfo,
    NarrationCancelled,
    NarrationCompletedOutcome,
    NarrationEnd,
    NarrationFailedOutcome,
    NarrationSegment,
    NarrationTimings,
    Outcome,
    SegmentEvent,
    ms_since,
    segment_adapter,
)
from amplify_stream.metrics import Metrics
from amplify_stream.speech import mp3
from amplify_stream.speech.base import AUDIO_FORMAT, AudioData, SpeechProvider, WordMark
from amplify_stream.topics import Topics
from consumers.cancels import RecentCancels
from consumers.completion import complete_story, repeat_completion
from consumers.history import story_history
from consumers.worker import Worker
from producers.lease import Lease, PartitionLost
from producers.outcomes import OutcomePublisher
from producers.stream import StreamPublisher

log = logging.getLogger(__name__)

# Audio per chunk event: small enough to start playing early, big enough to be cheap.
CHUNK_BYTES = 12 * 1024


def _starts_attempt(event: SegmentEvent) -> bool:
    """The first record of an enhancement attempt's narration."""
    return (isinstance(event, NarrationSegment) and event.index == 0) or (
        isinstance(event, NarrationEnd) and event.segments == 0
    )


def audio_url(story_id: str) -> str:
    return f"/v1/stories/{story_id}/audio"


class Narrator(Worker[SegmentEvent]):
    def __init__(
        self,
        bus: Bus,
        settings: Settings,
        speech: SpeechProvider,
        *,
        stream_producer: Producer,
        audio: AudioStore,
        metrics: Metrics | None = None,
    ) -> None:
        self.topics = Topics.from_settings(settings)
        super().__init__(
            bus,
            topics=[self.topics.segments],
            group_id=f"{settings.topic_prefix}.narrator",
            dlq_topic=self.topics.dlq,
            adapter=segment_adapter,
            concurrency=settings.narrator_stories,
            shutdown_grace_s=settings.worker_shutdown_grace_s,
            metrics=metrics,
            outcomes_topic=self.topics.outcomes,
        )
        self.speech = speech
        self.stream_producer = stream_producer
        self.audio = audio
        self.synthesis_slots = asyncio.Semaphore(settings.narrator_concurrency)
        self._sessions: dict[str, _Narration] = {}
        # Cancels seen before their story's first sentence, until it comes.
        self._cancelled = RecentCancels()
        # A first sentence older than this may be a frozen enhancer's, queued before it
        # froze and delivered once it woke, of a story its successor may have finished:
        # its history is read first. (A frozen member loses its partitions a session
        # timeout after its last heartbeat; heartbeats come every third of one.)
        self._late_after_ms = settings.kafka_session_timeout_ms // 2

    async def handle(self, event: SegmentEvent, record: Record) -> None:
        session = self._sessions.get(event.story_id)
        if isinstance(event, NarrationCancelled):
            if session is not None:
                session.cancel()
            else:
                self._cancelled.add(event.story_id)
            return
        if session is not None:
            session.feed(event)
            return
        if not _starts_attempt(event):
            # The tail of a story narrated before a restart: its start was committed,
            # which only happens once the story ended.
            return
        # The session exists before anything is awaited, and until the story ends: its
        # next records, handled meanwhile by other tasks (also while a run waits for the
        # bus to come back), must find it, not be taken for an old story's tail.
        session = _Narration(self, event, self.ownership(record), self.outcomes(record))
        self._sessions[event.story_id] = session
        try:
            await self.until_the_bus_answers(record, lambda: self._narrate(session, record))
        finally:
            self._sessions.pop(event.story_id, None)

    async def _narrate(self, session: _Narration, record: Record) -> None:
        """One run of a story's narration, from its first sentence; a run that failed on
        the bus is followed by another that reads the history again."""
        late = time.time() * 1000 - record.timestamp_ms > self._late_after_ms
        if self.may_have_run(record) or late:
            history = await story_history(self._bus, self.topics, session.story_id, session.first)
            if (done := history.completed) is not None:
                # Narrated and ended by a worker before us (which may have died before
                # telling the clients).
                if not history.stream["story.completed"]:
                    await repeat_completion(session.new_stream(), session.story_id, done)
                return
            session.narration_attempt = history.stream["audio.started"] + 1
        if self._cancelled.take(session.story_id):
            session.cancel()
        log.info(
            "story %s narration started (attempt %d)",
            session.story_id,
            session.narration_attempt,
        )
        task = asyncio.create_task(session.run(), name=f"narrate:{session.story_id}")
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise


class _Narration:
    """One story's narration, from its first segment to its end marker.

    It keeps every record it is fed, so a run that failed (the bus went away) can be
    followed by another from the first sentence."""

    def __init__(
        self,
        narrator: Narrator,
        first: NarrationSegment | NarrationEnd,
        lease: Lease,
        outcomes: OutcomePublisher,
    ):
        self.n = narrator
        self.first = first
        # Every write goes through the lease of the story's segments partition.
        self.lease = lease
        self.outcomes = outcomes
        self.story_id = first.story_id
        self.user_id = first.user_id
        self.submitted_at = first.submitted_at
        # Our own attempt, as the clients count them (one per audio.started).
        self.narration_attempt = 1
        self.events: list[SegmentEvent] = [first]
        self._fed = asyncio.Event()
        self.stream = self.new_stream()
        self.voice = narrator.speech.default_voice
        self.cancelled = False
        self._speaking: asyncio.Task[None] | None = None
        self.attempt = first.attempt
        self._reset_state()

    def feed(self, event: SegmentEvent) -> None:
        self.events.append(event)
        self._fed.set()

    def new_stream(self) -> StreamPublisher:
        return StreamPublisher(
            self.n.stream_producer, self.n.topics.stream, self.story_id, self.user_id, self.lease
        )

    def _reset_state(self) -> None:
        self.writer: NarrationWriter | None = None
        self.failure: AmplifyError | None = None
        self.chunks = 0
        self.words = 0
        self.duration_ms = 0.0
        self.first_audio_ms: float | None = None

    def cancel(self) -> None:
        """Stop speaking now; the end marker (which the enhancer always sends) ends it."""
        self.cancelled = True
        if self._speaking is not None:
            self._speaking.cancel()

    async def _next(self, position: int) -> SegmentEvent:
        while position >= len(self.events):
            self._fed.clear()
            await self._fed.wait()
        return self.events[position]

    async def _begin(self) -> None:
        """A run starts from the first sentence of the newest enhancement attempt fed so
        far, with nothing written, once every record of the run before it is settled."""
        if self.writer is not None:
            self.writer.discard()
        self._reset_state()
        await self.stream.settle()
        self.stream = self.new_stream()
        self.attempt = max(
            e.attempt
            for e in self.events
            if isinstance(e, NarrationSegment | NarrationEnd) and _starts_attempt(e)
        )

    async def run(self) -> None:
        await self._begin()
        position = 0
        try:
            while True:
                event = await self._next(position)
                position += 1
                if isinstance(event, NarrationSegment):
                    if event.attempt > self.attempt and event.index == 0:
                        await self._restart(event.attempt)
                    if event.attempt != self.attempt or self.cancelled or self.failure:
                        continue  # a stale attempt's sentence, or nothing more to say
                    # Its own task, so a cancel stops the speech at once (wait() does
                    # not raise when that task is cancelled; it does when we are).
                    self._speaking = asyncio.create_task(self._speak(event))
                    try:
                        await asyncio.wait({self._speaking})
                        if not self._speaking.cancelled() and self._speaking.exception():
                            raise self._speaking.exception()  # type: ignore[misc]
                    finally:
                        self._speaking.cancel()
                        self._speaking = None
                elif isinstance(event, NarrationEnd) and event.attempt >= self.attempt:
                    # Not shielded: a narrator that loses the partition stops at once;
                    # the next owner finishes what it finds published.
                    await self._end(event)
                    return
        except BaseException:
            # Cancelled, or the bus failed: nothing of this run is kept.
            if self._speaking is not None:
                self._speaking.cancel()
            if self.writer is not None:
                self.writer.discard()
                self.writer = None
            raise

    async def _restart(self, attempt: int) -> None:
        """The enhancer started the story again: so do we, after telling the clients."""
        if self.writer is not None:
            self.writer.discard()
            self.narration_attempt += 1
        self._reset_state()
        self.attempt = attempt

    async def _speak(self, segment: NarrationSegment) -> None:
        if self.writer is None:
            self.voice = segment.voice or self.n.speech.default_voice
            self.writer = self.n.audio.writer(self.story_id)
            if self.narration_attempt > 1:
                await self.stream.publish(
                    AudioReset(
                        story_id=self.story_id,
                        attempt=self.narration_attempt,
                        reason="the narration started again",
                    )
                )
            await self.stream.publish(
                AudioStarted(
                    story_id=self.story_id,
                    voice=self.voice,
                    provider=self.n.speech.name,
                    attempt=self.narration_attempt,
                )
            )
            # On the broker before any audio: a narrator that takes the story over counts
            # this attempt then, and numbers its own after it.
            await self.stream.drain()
        base_ms = self.duration_ms
        try:
            async with self.n.synthesis_slots:
                async for piece in self.n.speech.synthesize(segment.text, self.voice):
                    if isinstance(piece, AudioData):
                        await self._audio(piece.data)
                    elif isinstance(piece, WordMark):
                        await self._word(piece, segment, base_ms)
        except TtsUnavailable as exc:
            await self._fail(exc)
        except Exception as exc:
            if is_bus_error(exc) or isinstance(exc, PartitionLost):
                raise
            log.exception("narration failed", extra={"story_id": self.story_id})
            await self._fail(TtsUnavailable("speech synthesis failed"))

    async def _audio(self, data: bytes) -> None:
        assert self.writer is not None
        for chunk in mp3.split_frames(data, CHUNK_BYTES):
            self.writer.write(chunk)
            self.duration_ms += mp3.duration_ms(chunk)
            await self.stream.publish(
                AudioChunk(
                    story_id=self.story_id,
                    index=self.chunks,
                    data=base64.b64encode(chunk).decode(),
                    attempt=self.narration_attempt,
                )
            )
            self.chunks += 1
            if self.first_audio_ms is None:
                self.first_audio_ms = ms_since(self.submitted_at)
                self.n.metrics.first_audio_ms.observe(self.first_audio_ms)

    async def _word(self, mark: WordMark, segment: NarrationSegment, base_ms: float) -> None:
        start = end = None
        if mark.start is not None and mark.end is not None:
            # Spans in the segment become spans in the whole narrated text.
            start, end = segment.start + mark.start, segment.start + mark.end
        await self.stream.publish(
            AudioWord(
                story_id=self.story_id,
                text=mark.text,
                offset_ms=round(base_ms + mark.offset_ms, 1),
                duration_ms=round(mark.duration_ms, 1),
                start=start,
                end=end,
                attempt=self.narration_attempt,
            )
        )
        self.words += 1

    async def _fail(self, exc: AmplifyError) -> None:
        self.failure = exc
        self.n.metrics.provider_errors.labels(self.n.speech.name, exc.code).inc()
        await self.stream.publish(
            ErrorEvent(
                code=exc.code, message=exc.message, retryable=exc.retryable, story_id=self.story_id
            )
        )

    async def _end(self, end: NarrationEnd) -> None:
        results: list[Outcome] = []
        status, error = end.status, end.error
        if self.cancelled:
            status, error = (
                "cancelled",
                ErrorInfo(code="cancelled", message="the story was cancelled"),
            )
        if status == "completed":
            results.append(await self._finish_audio())
        elif self.writer is not None:
            self.writer.discard()
        await complete_story(
            self.outcomes,
            self.stream,
            story_id=self.story_id,
            user_id=self.user_id,
            attempt=self.attempt,
            submitted_at=self.submitted_at,
            status=status,
            error=error,
            results=results,
            metrics=self.n.metrics,
        )

    async def _finish_audio(self) -> Outcome:
        writer = self.writer
        if self.failure is None and (writer is None or writer.bytes == 0):
            await self._fail(TtsUnavailable("there was nothing to narrate"))
        if self.failure is not None or writer is None:
            if writer is not None:
                writer.discard()
            assert self.failure is not None
            return NarrationFailedOutcome(
                story_id=self.story_id,
                user_id=self.user_id,
                attempt=self.attempt,
                error=ErrorInfo(code=self.failure.code, message=self.failure.message),
            )
        # The file is whole before anyone hears it is: the URL works from here on. Only
        # while the story is surely ours: a zombie's file must not replace the owner's.
        await self.lease.hold()
        writer.commit()
        await self.stream.publish(
            AudioCompleted(
                story_id=self.story_id,
                duration_ms=round(self.duration_ms, 1),
                bytes=writer.bytes,
                sha256=writer.sha256,
                url=audio_url(self.story_id),
                attempt=self.narration_attempt,
            )
        )
        return NarrationCompletedOutcome(
            story_id=self.story_id,
            user_id=self.user_id,
            attempt=self.attempt,
            provider=self.n.speech.name,
            voice=self.voice,
            format=AUDIO_FORMAT,
            duration_ms=round(self.duration_ms, 1),
            bytes=writer.bytes,
            sha256=writer.sha256,
            chunks=self.chunks,
            words=self.words,
            timings=NarrationTimings(
                first_audio_ms=self.first_audio_ms,
                total_ms=ms_since(self.submitted_at),
            ),
        )
