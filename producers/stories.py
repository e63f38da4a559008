"""Commands to the workers (``amplify.stories.v1``, key ``story_id``), each committed in a
transaction before we answer (``producers/commands.py``): a story is accepted only once
the bus holds it for good, and one refused is never run."""

from __future__ import annotations

from amplify_stream.bus.base import Position
from amplify_stream.events import StoryCancelled, StorySubmitted, encode, headers_for
from producers.commands import CommandPublisher


class StoryCommands:
    def __init__(self, publisher: CommandPublisher, topic: str, timeout_s: float) -> None:
        self._publisher = publisher
        self._topic = topic
        self._timeout_s = timeout_s

    async def submit(self, event: StorySubmitted) -> Position:
        """Raises ``NotPublished`` when the story is not accepted (nor ever will run)."""
        return await self._send(event)

    async def cancel(self, event: StoryCancelled) -> Position:
        return await self._send(event)

    async def _send(self, event: StorySubmitted | StoryCancelled) -> Position:
        return await self._publisher.publish(
            self._topic,
            event.story_id,
            encode(event),
            headers_for(event.type),
            timeout_s=self._timeout_s,
        )
