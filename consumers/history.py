"""What happened to a story before: for a worker that may be running it again.

A story comes back to a worker when the one running it died (the group hands its
partition over) or the bus failed mid-way. Its history on the topics tells the new run
what to do: nothing, when the outcome is already there (exactly one ``story.completed``
per story); otherwise a new attempt, announced with a reset so clients drop the old one.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from amplify_stream.bus.base import Bus, Isolation
from amplify_stream.events import HistoryStart
from amplify_stream.topics import Topics


@dataclass(slots=True)
class StoryHistory:
    # How often each event type of the story is on the stream topic.
    stream: Counter[str] = field(default_factory=Counter)
    # The story's committed outcome records, by type (the latest of each).
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def completed(self) -> dict[str, Any] | None:
        return self.outcomes.get("story.completed")

    def next_attempt(self, started: str) -> int:
        """The number of a new attempt at a stage: past every attempt whose start
        (``started``: ``enhancement.started``, ``audio.started``) is on the stream."""
        return self.stream[started] + 1


async def story_history(
    bus: Bus, topics: Topics, story_id: str, start: HistoryStart
) -> StoryHistory:
    history = StoryHistory()
    stream, outcomes = await asyncio.gather(
        _records(bus, topics.stream, story_id, start.stream_offset, "read_uncommitted"),
        _records(bus, topics.outcomes, story_id, start.outcomes_offset, "read_committed"),
    )
    for value in stream:
        history.stream[value["type"]] += 1
    for value in outcomes:
        history.outcomes[value["type"]] = value
    return history


async def _records(
    bus: Bus, topic: str, story_id: str, start: int | None, isolation: Isolation
) -> list[dict[str, Any]]:
    ends = await bus.end_offsets(topic)
    partition = bus.partition_for(topic, story_id, len(ends))
    records = await bus.read_range(
        topic, partition, start or 0, ends.get(partition, 0), isolation=isolation
    )
    return [orjson.loads(r.value) for r in records if r.key == story_id]
