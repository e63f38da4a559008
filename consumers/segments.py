"""The narration segments of one enhancement attempt, from the enhancer to the narrator:
each sentence of the text to narrate as soon as it is complete, then the end marker.
The one place a segment record's envelope (story, attempt, where its history starts) is
built."""

from __future__ import annotations

from typing import Any

from amplify_stream.events import (
    ErrorInfo,
    NarrationEnd,
    NarrationSegment,
    StoryStatus,
    StorySubmitted,
)
from amplify_stream.text.paragraphs import has_blank_line
from amplify_stream.text.sentences import SentenceStream
from producers.stream import StreamPublisher


class SegmentWriter:
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
        # Paragraphs as the submitted text has them: a line break is settled as it comes.
        self._sentences = SentenceStream(blank_lines=has_blank_line(story.text))
        self._count = 0
        # Not pipelined (the benchmark's serial baseline): sentences wait for the end.
        self._pipelined = pipelined
        self._held: list[tuple[int, str]] = []

    async def write(self, text: str) -> None:
        """More of the text to narrate: its sentences that are now complete go out."""
        sentences = self._sentences.feed(text)
        if self._pipelined:
            await self._publish(sentences)
        else:
            self._held += sentences

    async def flush(self) -> None:
        """The text is whole: its last sentence (and any held back) go out."""
        held, self._held = self._held, []
        await self._publish(held + self._sentences.finish())

    async def drain(self) -> None:
        await self._publisher.drain()

    async def settle(self) -> None:
        await self._publisher.settle()

    async def end(self, status: StoryStatus, error: ErrorInfo | None) -> None:
        """How the enhancement ended, after its last sentence: the narrator ends the story."""
        await self._publisher.publish(
            NarrationEnd(**self._envelope(), status=status, error=error, segments=self._count)
        )
        await self._publisher.drain()

    async def _publish(self, sentences: list[tuple[int, str]]) -> None:
        for start, sentence in sentences:
            await self._publisher.publish(
                NarrationSegment(
                    **self._envelope(),
                    index=self._count,
                    text=sentence,
                    start=start,
                    voice=self._story.voice,
                )
            )
            self._count += 1

    def _envelope(self) -> dict[str, Any]:
        """What every segment record of the attempt carries: the narrator numbers its own
        attempts by them and reads the story's history from the offsets."""
        story = self._story
        return {
            "story_id": story.story_id,
            "user_id": story.user_id,
            "attempt": self._attempt,
            "submitted_at": story.at,
            "stream_offset": story.stream_offset,
            "outcomes_offset": story.outcomes_offset,
        }
