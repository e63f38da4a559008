"""One take of a story's narration: the audio of one narration attempt, from its
``audio.started`` (after an ``audio.reset``, from the second attempt on) to its outcome.
A new attempt is a new take, starting from nothing written."""

from __future__ import annotations

import asyncio
import base64
import logging
from dataclasses import dataclass

from amplify_stream.audio_store import AudioStore, NarrationWriter
from amplify_stream.bus import is_bus_error
from amplify_stream.errors import AmplifyError, TtsUnavailable
from amplify_stream.events import (
    AudioChunk,
    AudioCompleted,
    AudioReset,
    AudioStarted,
    AudioWord,
    ErrorEvent,
    ErrorInfo,
    NarrationCompletedOutcome,
    NarrationEnd,
    NarrationFailedOutcome,
    NarrationSegment,
    NarrationTimings,
    Outcome,
    ms_since,
)
from amplify_stream.metrics import Metrics
from amplify_stream.speech import mp3
from amplify_stream.speech.base import AUDIO_FORMAT, AudioData, SpeechProvider, WordMark
from consumers.attempts import start_attempt
from producers.lease import Lease, PartitionLost
from producers.stream import StreamPublisher

log = logging.getLogger(__name__)

# Audio per chunk event: small enough to start playing early, big enough to be cheap.
CHUNK_BYTES = 12 * 1024

RESTARTED = "the narration started again"


def audio_url(story_id: str) -> str:
    return f"/v1/stories/{story_id}/audio"


@dataclass(frozen=True, slots=True)
class NarrationTools:
    """What every narration of a narrator speaks and keeps its audio with."""

    speech: SpeechProvider
    audio: AudioStore
    # Syntheses running at once, across the narrator's stories.
    synthesis_slots: asyncio.Semaphore
    metrics: Metrics


class NarrationTake:
    def __init__(
        self,
        tools: NarrationTools,
        stream: StreamPublisher,
        lease: Lease,
        story: NarrationSegment | NarrationEnd,
        narration_attempt: int,
    ) -> None:
        """``story``: the story's first record (who, since when); ``narration_attempt``:
        this take's number, as the clients count them (one per ``audio.started``)."""
        self._tools = tools
        self._stream = stream
        self._lease = lease
        self._story_id = story.story_id
        self._user_id = story.user_id
        self._submitted_at = story.submitted_at
        self._narration_attempt = narration_attempt
        self._voice = tools.speech.default_voice
        self._writer: NarrationWriter | None = None
        self.failure: AmplifyError | None = None
        self._chunks = 0
        self._words = 0
        self._duration_ms = 0.0
        self._first_audio_ms: float | None = None

    @property
    def started(self) -> bool:
        """Whether its ``audio.started`` went out (with its first sentence)."""
        return self._writer is not None

    def discard(self) -> None:
        """Nothing of this take is kept (its file, if any, removed)."""
        if self._writer is not None:
            self._writer.discard()

    async def speak(self, segment: NarrationSegment) -> None:
        speech = self._tools.speech
        if self._writer is None:
            self._voice = segment.voice or speech.default_voice
            self._writer = self._tools.audio.writer(self._story_id)
            await start_attempt(
                self._stream,
                self._story_id,
                self._narration_attempt,
                reset=AudioReset,
                reason=RESTARTED,
                started=lambda: AudioStarted(
                    story_id=self._story_id,
                    voice=self._voice,
                    provider=speech.name,
                    attempt=self._narration_attempt,
                ),
            )
        base_ms = self._duration_ms
        try:
            async with self._tools.synthesis_slots:
                async for piece in speech.synthesize(segment.text, self._voice):
                    if isinstance(piece, AudioData):
                        await self._audio(piece.data)
                    elif isinstance(piece, WordMark):
                        await self._word(piece, segment, base_ms)
        except TtsUnavailable as exc:
            await self._fail(exc)
        except Exception as exc:
            if is_bus_error(exc) or isinstance(exc, PartitionLost):
                raise
            log.exception("narration failed", extra={"story_id": self._story_id})
            await self._fail(TtsUnavailable("speech synthesis failed"))

    async def _audio(self, data: bytes) -> None:
        assert self._writer is not None
        for chunk in mp3.split_frames(data, CHUNK_BYTES):
            self._writer.write(chunk)
            self._duration_ms += mp3.duration_ms(chunk)
            await self._stream.publish(
                AudioChunk(
                    story_id=self._story_id,
                    index=self._chunks,
                    data=base64.b64encode(chunk).decode(),
                    attempt=self._narration_attempt,
                )
            )
            self._chunks += 1
            if self._first_audio_ms is None:
                self._first_audio_ms = ms_since(self._submitted_at)
                self._tools.metrics.first_audio_ms.observe(self._first_audio_ms)

    async def _word(self, mark: WordMark, segment: NarrationSegment, base_ms: float) -> None:
        start = end = None
        if mark.start is not None and mark.end is not None:
            # Spans in the segment become spans in the whole narrated text.
            start, end = segment.start + mark.start, segment.start + mark.end
        await self._stream.publish(
            AudioWord(
                story_id=self._story_id,
                text=mark.text,
                offset_ms=round(base_ms + mark.offset_ms, 1),
                duration_ms=round(mark.duration_ms, 1),
                start=start,
                end=end,
                attempt=self._narration_attempt,
            )
        )
        self._words += 1

    async def _fail(self, exc: AmplifyError) -> None:
        self.failure = exc
        self._tools.metrics.provider_errors.labels(self._tools.speech.name, exc.code).inc()
        await self._stream.publish(
            ErrorEvent(
                code=exc.code, message=exc.message, retryable=exc.retryable, story_id=self._story_id
            )
        )

    async def finish(self, attempt: int) -> Outcome:
        """The narration outcome of enhancement attempt ``attempt``, which completed: the
        file kept and ``audio.completed`` sent, or the failure."""
        writer = self._writer
        if self.failure is None and (writer is None or writer.bytes == 0):
            await self._fail(TtsUnavailable("there was nothing to narrate"))
        if self.failure is not None or writer is None:
            if writer is not None:
                writer.discard()
            assert self.failure is not None
            return NarrationFailedOutcome(
                story_id=self._story_id,
                user_id=self._user_id,
                attempt=attempt,
                error=ErrorInfo(code=self.failure.code, message=self.failure.message),
            )
        # The file is whole before anyone hears it is: the URL works from here on. Only
        # while the story is surely ours: a zombie's file must not replace the owner's.
        await self._lease.hold()
        writer.commit()
        await self._stream.publish(
            AudioCompleted(
                story_id=self._story_id,
                duration_ms=round(self._duration_ms, 1),
                bytes=writer.bytes,
                sha256=writer.sha256,
                url=audio_url(self._story_id),
                attempt=self._narration_attempt,
            )
        )
        return NarrationCompletedOutcome(
            story_id=self._story_id,
            user_id=self._user_id,
            attempt=attempt,
            provider=self._tools.speech.name,
            voice=self._voice,
            format=AUDIO_FORMAT,
            duration_ms=round(self._duration_ms, 1),
            bytes=writer.bytes,
            sha256=writer.sha256,
            chunks=self._chunks,
            words=self._words,
            timings=NarrationTimings(
                first_audio_ms=self._first_audio_ms,
                total_ms=ms_since(self._submitted_at),
            ),
        )
