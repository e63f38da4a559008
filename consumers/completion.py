"""The end of a story, in one place: its outcomes (with ``story.completed``) in one
transaction, then ``story.completed`` on the stream, so a client that sees the end can
rely on the result being durable."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from amplify_stream.events import (
    ErrorInfo,
    Outcome,
    StoryCompleted,
    StoryCompletedOutcome,
    StoryEvent,
    StoryStatus,
    StoryTimings,
    ms_since,
)
from amplify_stream.metrics import Metrics
from producers.outcomes import OutcomePublisher
from producers.stream import StreamPublisher


async def complete_story(
    outcomes: OutcomePublisher,
    stream: StreamPublisher,
    *,
    story_id: str,
    user_id: str,
    attempt: int,
    submitted_at: str,
    status: StoryStatus,
    error: ErrorInfo | None,
    results: Sequence[Outcome] = (),
    announce: Sequence[StoryEvent] = (),
    metrics: Metrics | None = None,
) -> None:
    """``results`` and ``story.completed`` in one transaction; then on the stream the
    events that tell of them (``announce``), and ``story.completed``."""
    done = StoryCompletedOutcome(
        story_id=story_id,
        user_id=user_id,
        attempt=attempt,
        status=status,
        error=error,
        timings=StoryTimings(total_ms=ms_since(submitted_at)),
    )
    await stream.drain()
    await outcomes.publish([*results, done])
    for event in announce:
        await stream.publish(event)
    await stream.publish(StoryCompleted(story_id=story_id, status=status, error=error))
    await stream.drain()
    if metrics is not None:
        metrics.stories.labels(status).inc()


async def repeat_completion(stream: StreamPublisher, story_id: str, done: dict[str, Any]) -> None:
    """``story.completed`` on the stream again, from its outcome record: for a worker that
    died between the outcome and telling the clients."""
    error = ErrorInfo(**done["error"]) if done.get("error") else None
    await stream.publish(StoryCompleted(story_id=story_id, status=done["status"], error=error))
    await stream.drain()
