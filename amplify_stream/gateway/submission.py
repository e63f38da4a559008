"""Stories as the gateway sees them: submit, find (owner only), cancel, watch.

Shared by the WebSocket and the HTTP routes so both apply the same limits and rules.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from amplify_stream.bus.base import Bus, BusUnavailable, Record, parse_cursor
from amplify_stream.config import Settings
from amplify_stream.errors import (
    Conflict,
    CursorExpired,
    InvalidMessage,
    InvalidStory,
    NotFound,
    NotReady,
    StoryTooLarge,
)
from amplify_stream.events import StoryCancelled, StoryOptions, StorySubmitted
from amplify_stream.gateway.relay import RelayHub, Subscription
from amplify_stream.store.stories import StoryStore
from amplify_stream.topics import Topics
from producers.stories import StoryCommands

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Accepted:
    story_id: str
    partition: int
    # Events of this story are the records of ``partition`` above this offset.
    after: int
    # Set for a new story: subscribed before its command was published, so no event
    # can slip by before the watcher starts.
    subscription: Subscription | None


class Stories:
    def __init__(
        self,
        settings: Settings,
        topics: Topics,
        bus: Bus,
        store: StoryStore,
        commands: StoryCommands,
        relay: RelayHub,
    ) -> None:
        self._settings = settings
        self._topics = topics
        self._bus = bus
        self._store = store
        self._commands = commands
        self._relay = relay

    def check_limits(self, options: StoryOptions) -> None:
        if len(options.text) > self._settings.max_story_chars:
            raise StoryTooLarge(
                f"the story has {len(options.text)} characters; "
                f"the limit is {self._settings.max_story_chars}"
            )
        if options.title is not None and len(options.title) > self._settings.max_title_chars:
            raise InvalidStory(f"the title is longer than {self._settings.max_title_chars} chars")
        if not options.text.strip():
            raise InvalidStory("the story is empty")

    async def submit(self, user_id: str, options: StoryOptions) -> Accepted:
        self.check_limits(options)
        existing = await self._existing(user_id, options)
        if existing is not None:
            return existing
        story_id = str(uuid.uuid4())
        try:
            ends = await self._bus.end_offsets(self._topics.stream)
        except BusUnavailable as exc:
            raise NotReady("the event bus is unavailable; nothing was accepted") from exc
        partition = self._bus.partition_for(self._topics.stream, story_id, len(ends))
        start = ends.get(partition, 0)
        sub = self._relay.subscribe(story_id)
        try:
            try:
                await self._store.create_story(
                    story_id=story_id,
                    user_id=user_id,
                    options=options,
                    stream_partition=partition,
                    stream_offset=start,
                )
            except Conflict:
                # The same idempotency key raced in: the first one wins, this one joins it.
                existing = await self._existing(user_id, options)
                if existing is None:
                    raise
                self._relay.unsubscribe(sub)
                return existing
            try:
                await self._commands.submit(
                    StorySubmitted(story_id=story_id, user_id=user_id, **options.model_dump())
                )
            except Exception as exc:
                # Not on the bus means not accepted: forget the row, the client retries.
                await self._store.delete(story_id)
                log.warning("story not accepted: the bus refused it", extra={"story_id": story_id})
                raise NotReady("the event bus is unavailable; nothing was accepted") from exc
        except BaseException:
            self._relay.unsubscribe(sub)
            raise
        return Accepted(story_id, partition, start - 1, sub)

    async def _existing(self, user_id: str, options: StoryOptions) -> Accepted | None:
        if not options.idempotency_key:
            return None
        story = await self._store.by_idempotency_key(user_id, options.idempotency_key)
        if story is None:
            return None
        return Accepted(story.id, story.stream_partition, story.stream_offset - 1, None)

    async def find(self, user_id: str, story_id: str, cursor: str | None = None) -> Accepted:
        """The story's position on the stream, after ``cursor`` when given (owner only)."""
        story = await self._store.get_for_user(story_id, user_id)
        after = story.stream_offset - 1
        if cursor:
            try:
                partition, offset = parse_cursor(cursor)
            except ValueError as exc:
                raise InvalidMessage("cursor is not one this service gave out") from exc
            if partition != story.stream_partition:
                raise InvalidMessage("cursor does not belong to this story")
            after = max(after, offset)
        try:
            oldest = (await self._bus.begin_offsets(self._topics.stream)).get(
                story.stream_partition, 0
            )
        except BusUnavailable as exc:
            raise NotReady("the event bus is unavailable; try again") from exc
        if after + 1 < oldest:
            raise CursorExpired(
                "the events after this cursor are past retention; "
                f"read the result from /v1/stories/{story.id}"
            )
        return Accepted(story.id, story.stream_partition, after, None)

    async def cancel(self, user_id: str, story_id: str) -> None:
        story = await self._store.get_for_user(story_id, user_id)
        try:
            await self._commands.cancel(StoryCancelled(story_id=story.id, user_id=user_id))
        except Exception as exc:
            raise NotReady("the event bus is unavailable; try again") from exc

    def watch(self, accepted: Accepted) -> AsyncIterator[Record]:
        return self._relay.follow(
            accepted.story_id, accepted.partition, accepted.after, accepted.subscription
        )


__all__ = ["Accepted", "NotFound", "Stories"]
