"""The start of an attempt at a story's stage (enhancement, narration), in one place.

A stage runs again when the worker running it stopped (a crash, a hand-back, a bus that
went away): the new attempt numbers itself past every attempt whose start is on the
stream (``StoryHistory.next_attempt``). Every attempt after the first begins with a
reset, so clients drop what the attempts before it sent; then its ``*.started``."""

from __future__ import annotations

from collections.abc import Callable

from amplify_stream.events import AudioReset, AudioStarted, EnhancementReset, EnhancementStarted
from producers.stream import StreamPublisher


async def start_attempt(
    stream: StreamPublisher,
    story_id: str,
    attempt: int,
    *,
    reset: type[EnhancementReset | AudioReset],
    reason: str,
    started: Callable[[], EnhancementStarted | AudioStarted],
) -> None:
    """The reset (from the second attempt on), then the start, acknowledged by the broker
    before anything else of the attempt is sent: a worker that takes the story over counts
    this attempt then, and numbers its own after it."""
    if attempt > 1:
        await stream.publish(reset(story_id=story_id, attempt=attempt, reason=reason))
    await stream.publish(started())
    await stream.drain()
