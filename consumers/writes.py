"""Where one story's work writes: every publisher behind the lease of the story's input
partition (a worker that lost it writes nothing more), outcomes through that partition's
own fenced transactional producer (``consumers/ownership.py``)."""

from __future__ import annotations

from amplify_stream.bus.base import Producer
from amplify_stream.topics import Topics
from producers.lease import Lease
from producers.outcomes import OutcomePublisher
from producers.stream import StreamPublisher


class StoryWrites:
    def __init__(
        self,
        producer: Producer,
        topics: Topics,
        lease: Lease,
        outcomes: OutcomePublisher,
        story_id: str,
        user_id: str,
    ) -> None:
        self._producer = producer
        self._topics = topics
        self.lease = lease
        self.outcomes = outcomes
        self.story_id = story_id
        self.user_id = user_id

    def stream(self) -> StreamPublisher:
        """A new publisher of the story's client-facing events."""
        return self._publisher(self._topics.stream)

    def segments(self) -> StreamPublisher:
        """A new publisher of the story's narration segments (enhancer to narrator)."""
        return self._publisher(self._topics.segments)

    def _publisher(self, topic: str) -> StreamPublisher:
        return StreamPublisher(self._producer, topic, self.story_id, self.user_id, self.lease)
