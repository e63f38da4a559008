"""Commands to the workers: acks from all replicas, idempotent; awaited before we answer."""

from __future__ import annotations

from amplify_stream.bus.base import Position, Producer
from amplify_stream.events import StoryCancelled, StorySubmitted, encode, headers_for


class StoryCommands:
    def __init__(self, producer: Producer, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    async def submit(self, event: StorySubmitted) -> Position:
        # Awaited: a story is "accepted" only once the broker holds it.
        return await self._producer.send_and_wait(
            self._topic, event.story_id, encode(event), headers_for(event.type)
        )

    async def cancel(self, event: StoryCancelled) -> Position:
        return await self._producer.send_and_wait(
            self._topic, event.story_id, encode(event), headers_for(event.type)
        )
