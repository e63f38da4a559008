"""One story's narration session, from its first segment record to its end marker: it
receives the story's segment records as they come, speaks the sentences of the newest
enhancement attempt (one take per narration attempt, ``consumers/narration_take.py``),
and ends the story.

It keeps every record it receives, so a run that failed (the bus went away) can be
followed by another from the first sentence."""

from __future__ import annotations

import asyncio

from amplify_stream.events import (
    ErrorInfo,
    NarrationEnd,
    NarrationSegment,
    Outcome,
    SegmentEvent,
)
from consumers.completion import complete_story
from consumers.narration_take import NarrationTake, NarrationTools
from consumers.writes import StoryWrites


def starts_attempt(event: SegmentEvent) -> bool:
    """The first record of an enhancement attempt's narration."""
    return (isinstance(event, NarrationSegment) and event.index == 0) or (
        isinstance(event, NarrationEnd) and event.segments == 0
    )


class Narration:
    def __init__(
        self, first: NarrationSegment | NarrationEnd, writes: StoryWrites, tools: NarrationTools
    ) -> None:
        self.first = first
        self.story_id = first.story_id
        # Every write goes through the lease of the story's segments partition.
        self._writes = writes
        self._tools = tools
        # Our own attempt, as the clients count them (one per audio.started).
        self.narration_attempt = 1
        # The enhancement attempt narrated.
        self.attempt = first.attempt
        self.cancelled = False
        self._records: list[SegmentEvent] = [first]
        self._received = asyncio.Event()
        self._stream = writes.stream()
        self._speaking: asyncio.Task[None] | None = None
        self._take = self._new_take()

    def receive(self, event: SegmentEvent) -> None:
        """A later record of the story (a sentence, the end marker)."""
        self._records.append(event)
        self._received.set()

    def story_cancelled(self) -> None:
        """Stop speaking now; the end marker (which the enhancer always sends) ends it."""
        self.cancelled = True
        if self._speaking is not None:
            self._speaking.cancel()

    async def run(self) -> None:
        await self._begin()
        position = 0
        try:
            while True:
                event = await self._next(position)
                position += 1
                if isinstance(event, NarrationSegment):
                    if event.attempt > self.attempt and event.index == 0:
                        self._restart(event.attempt)
                    if event.attempt != self.attempt or self.cancelled or self._take.failure:
                        continue  # a stale attempt's sentence, or nothing more to say
                    await self._speak(event)
                elif isinstance(event, NarrationEnd) and event.attempt >= self.attempt:
                    # Not shielded: a narrator that loses the partition stops at once;
                    # the next owner finishes what it finds published.
                    await self._end(event)
                    return
        except BaseException:
            # Cancelled, or the bus failed: nothing of this run is kept.
            if self._speaking is not None:
                self._speaking.cancel()
            self._take.discard()
            raise

    def _new_take(self) -> NarrationTake:
        return NarrationTake(
            self._tools, self._stream, self._writes.lease, self.first, self.narration_attempt
        )

    async def _next(self, position: int) -> SegmentEvent:
        while position >= len(self._records):
            self._received.clear()
            await self._received.wait()
        return self._records[position]

    async def _begin(self) -> None:
        """A run starts from the first sentence of the newest enhancement attempt received
        so far, with nothing written, once every record of the run before it is settled."""
        self._take.discard()
        await self._stream.settle()
        self._stream = self._writes.stream()
        self.attempt = max(
            e.attempt
            for e in self._records
            if isinstance(e, NarrationSegment | NarrationEnd) and starts_attempt(e)
        )
        self._take = self._new_take()

    def _restart(self, attempt: int) -> None:
        """The enhancer started the story again: so do we, after telling the clients."""
        if self._take.started:
            self._take.discard()
            self.narration_attempt += 1
        self.attempt = attempt
        self._take = self._new_take()

    async def _speak(self, segment: NarrationSegment) -> None:
        # Its own task, so a cancel stops the speech at once (wait() does not raise when
        # that task is cancelled; it does when we are).
        self._speaking = asyncio.create_task(self._take.speak(segment))
        try:
            await asyncio.wait({self._speaking})
            if not self._speaking.cancelled() and self._speaking.exception():
                raise self._speaking.exception()  # type: ignore[misc]
        finally:
            self._speaking.cancel()
            self._speaking = None

    async def _end(self, end: NarrationEnd) -> None:
        results: list[Outcome] = []
        status, error = end.status, end.error
        if self.cancelled:
            status, error = (
                "cancelled",
                ErrorInfo(code="cancelled", message="the story was cancelled"),
            )
        if status == "completed":
            results.append(await self._take.finish(self.attempt))
        else:
            self._take.discard()
        await complete_story(
            self._writes.outcomes,
            self._stream,
            story_id=self.story_id,
            user_id=self.first.user_id,
            attempt=self.attempt,
            submitted_at=self.first.submitted_at,
            status=status,
            error=error,
            results=results,
            metrics=self._tools.metrics,
        )
