"""The narrator: speaks each story's sentences as the enhancer completes them, streams the
audio and word timings, keeps the whole narration, and ends the story.

A story's session, from its first sentence to its end, is ``consumers/narration.py``;
this worker routes each segment record to its story's session, and decides whether a
story is narrated (again) at all.

Offsets: a story's first segment record stays unfinished until the story ends, so the
group never commits past a story that is still being narrated (a crash replays it
whole). Later records of a story only go to its session and finish at once.
"""

from __future__ import annotations

import asyncio
import logging
import time

from amplify_stream.audio_store import AudioStore
from amplify_stream.bus.base import Record
from amplify_stream.events import NarrationCancelled, SegmentEvent, segment_adapter
from amplify_stream.speech.base import SpeechProvider
from consumers.cancels import RecentCancels
from consumers.completion import repeat_completion
from consumers.history import story_history
from consumers.narration import Narration, starts_attempt
from consumers.narration_take import NarrationTools
from consumers.worker import Worker, WorkerDeps
from consumers.writes import StoryWrites

log = logging.getLogger(__name__)


class Narrator(Worker[SegmentEvent]):
    role = "narrator"
    adapter = segment_adapter
    writes_outcomes = True

    def __init__(self, deps: WorkerDeps, speech: SpeechProvider, audio: AudioStore) -> None:
        settings = deps.settings
        super().__init__(deps, deps.topics.segments, concurrency=settings.narrator_stories)
        self.speech = speech
        self._tools = NarrationTools(
            speech, audio, asyncio.Semaphore(settings.narrator_concurrency), self.metrics
        )
        self._sessions: dict[str, Narration] = {}
        # Cancels seen before their story's first sentence, until it comes.
        self._early_cancels = RecentCancels()
        # A first sentence older than this may be a frozen enhancer's, queued before it
        # froze and delivered once it woke, of a story its successor may have finished:
        # its history is read first. (A frozen member loses its partitions a session
        # timeout after its last heartbeat; heartbeats come every third of one.)
        self._late_after_ms = settings.kafka_session_timeout_ms // 2

    async def handle(self, event: SegmentEvent, record: Record) -> None:
        session = self._sessions.get(event.story_id)
        if isinstance(event, NarrationCancelled):
            if session is not None:
                session.story_cancelled()
            else:
                self._early_cancels.remember(event.story_id)
            return
        if session is not None:
            session.receive(event)
            return
        if not starts_attempt(event):
            # The tail of a story narrated before a restart: its start was committed,
            # which only happens once the story ended.
            return
        # The session exists before anything is awaited, and until the story ends: its
        # next records, handled meanwhile by other tasks (also while a run waits for the
        # bus to come back), must find it, not be taken for an old story's tail.
        writes = self.writes(record, event.story_id, event.user_id)
        session = Narration(event, writes, self._tools)
        self._sessions[event.story_id] = session
        try:
            await self.until_the_bus_answers(record, lambda: self._narrate(session, writes, record))
        finally:
            self._sessions.pop(event.story_id, None)

    async def _narrate(self, session: Narration, writes: StoryWrites, record: Record) -> None:
        """One run of a story's narration, from its first sentence; a run that failed on
        the bus is followed by another that reads the history again."""
        late = time.time() * 1000 - record.timestamp_ms > self._late_after_ms
        if self.may_have_run(record) or late:
            history = await story_history(self.bus, self.topics, session.story_id, session.first)
            if (done := history.completed) is not None:
                # Narrated and ended by a worker before us (which may have died before
                # telling the clients).
                if not history.stream["story.completed"]:
                    await repeat_completion(writes.stream(), session.story_id, done)
                return
            session.narration_attempt = history.next_attempt("audio.started")
        if self._early_cancels.take(session.story_id):
            session.story_cancelled()
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
