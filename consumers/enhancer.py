"""The enhancer: runs each submitted story through the enhancement provider, streams the
pieces to the stream topic as they come, and publishes the result to the outcome topic.

A story's attempt, in its phases, is ``consumers/enhancement_run.py``; this worker decides
whether a story runs (again) at all, and stops a cancelled story's provider stream."""

from __future__ import annotations

import asyncio
import logging
from typing import ClassVar

from amplify_stream.bus.base import Record
from amplify_stream.events import (
    Command,
    ErrorInfo,
    NarrationCancelled,
    StoryCancelled,
    StorySubmitted,
    command_adapter,
)
from amplify_stream.providers.base import EnhancementProvider
from consumers.cancels import RecentCancels
from consumers.completion import repeat_completion
from consumers.enhancement_run import EnhancementRun, finish, finish_cancelled
from consumers.history import StoryHistory, story_history
from consumers.segments import SegmentWriter
from consumers.worker import Worker, WorkerDeps
from consumers.writes import StoryWrites

log = logging.getLogger(__name__)


class Enhancer(Worker[Command]):
    role = "enhancer"
    adapter = command_adapter
    writes_outcomes = True
    # Sentences go to the narrator as the rewrite completes them. False (a benchmark's
    # serial baseline only): the whole rewrite first, then its sentences.
    pipelined: ClassVar[bool] = True

    def __init__(self, deps: WorkerDeps, provider: EnhancementProvider) -> None:
        super().__init__(deps, deps.topics.stories, concurrency=deps.settings.enhancer_concurrency)
        self._provider = provider
        # Stories whose provider stream runs now, by the task consuming it.
        self._streaming: dict[str, asyncio.Task[None]] = {}
        # Cancels asked for (bounded): they hold across a story's history read and its
        # retries, and a replayed story that was cancelled ends cancelled.
        self._cancel_requested = RecentCancels()

    async def handle(self, event: Command, record: Record) -> None:
        writes = self.writes(record, event.story_id, event.user_id)
        if isinstance(event, StoryCancelled):
            await self._cancel_story(event, writes)
            return
        attempt = 1
        if self.may_have_run(record):
            history = await story_history(self.bus, self.topics, event.story_id, event)
            if await self._already_done(event, history, writes):
                return
            attempt = history.next_attempt("enhancement.started")
        log.info("story %s started (attempt %d)", event.story_id, attempt)
        run = EnhancementRun(
            event, attempt, self._provider, writes, self.metrics, pipelined=self.pipelined
        )
        try:
            await self._run(run)
        except Exception:
            await run.settle()
            raise

    async def _cancel_story(self, event: StoryCancelled, writes: StoryWrites) -> None:
        self._cancel_requested.remember(event.story_id)
        if (task := self._streaming.get(event.story_id)) is not None:
            task.cancel()
        # The narrator may still be speaking a story whose rewrite is done: tell it too.
        segments = writes.segments()
        await segments.publish(NarrationCancelled(story_id=event.story_id, user_id=event.user_id))
        await segments.drain()

    async def _already_done(
        self, story: StorySubmitted, history: StoryHistory, writes: StoryWrites
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
            await SegmentWriter(writes.segments(), story, result["attempt"]).end(
                "failed" if failed else "completed",
                ErrorInfo(**result["error"]) if failed else None,
            )
            return True
        return False

    async def _run(self, run: EnhancementRun) -> None:
        story_id = run.story.story_id
        if story_id in self._cancel_requested:
            # Cancelled before its provider stream began (the cancel was handled while
            # this record waited for its history or for the bus).
            await finish_cancelled(run)
            return
        await run.start()
        # The provider stream runs in a task of its own: a cancel stops it (and closes
        # its connection) without touching this one, which then ends the story.
        streaming = asyncio.create_task(run.stream_pieces(), name=f"stream:{story_id}")
        self._streaming[story_id] = streaming
        try:
            await asyncio.wait({streaming})
        except asyncio.CancelledError:
            # Handed back to the group (shutdown, rebalance): no outcome.
            streaming.cancel()
            await asyncio.gather(streaming, return_exceptions=True)
            raise
        finally:
            self._streaming.pop(story_id, None)
        await finish(run, streaming)
