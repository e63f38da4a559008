"""Stories as the gateway sees them: submit, find (owner only), cancel, watch.

Shared by the WebSocket and the HTTP routes so both apply the same limits and rules.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from amplify_stream.bus.base import Bus, BusUnavailable, Position, Record, parse_cursor
from amplify_stream.config.groups import LimitsSettings
from amplify_stream.errors import (
    Conflict,
    CursorExpired,
    InvalidMessage,
    InvalidStory,
    NotFound,
    NotReady,
)
from amplify_stream.events import StoryCancelled, StoryOptions, StorySubmitted, UserIgnores
from amplify_stream.events.text_limits import STORY_TEXTS, TextLimits
from amplify_stream.gateway.end_offsets import RecentEndOffsets
from amplify_stream.gateway.limits import Limiter
from amplify_stream.gateway.relay import RelayHub, Subscription
from amplify_stream.store.preferences import PreferenceStore
from amplify_stream.store.stories import StoryStore
from amplify_stream.topics import Topics
from producers.commands import NotPublished
from producers.stories import StoryCommands

log = logging.getLogger(__name__)

# How old the end offsets a new story starts after may be (``end_offsets.py``): a
# catch-up read goes over at most this much more of the log.
END_OFFSETS_MAX_AGE_S = 1.0


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
        limits: LimitsSettings,
        bus_timeout_s: float,
        topics: Topics,
        bus: Bus,
        store: StoryStore,
        commands: StoryCommands,
        relay: RelayHub,
        limiter: Limiter,
        preferences: PreferenceStore,
    ) -> None:
        self._preferences = preferences
        self._topics = topics
        self._bus = bus
        self._store = store
        self._commands = commands
        self._relay = relay
        self._limiter = limiter
        self._text_limits = TextLimits.of(limits)
        ends = {"max_age_s": END_OFFSETS_MAX_AGE_S, "timeout_s": bus_timeout_s}
        self._stream_ends = RecentEndOffsets(bus, topics.stream, **ends)
        # Rows of stories refused after their client left, being deleted.
        self._forgetting: set[asyncio.Future[bool]] = set()
        self._outcome_ends = RecentEndOffsets(bus, topics.outcomes, **ends)

    def check_limits(self, options: StoryOptions) -> None:
        self._text_limits.check(options, STORY_TEXTS, InvalidStory)

    async def submit(self, user_id: str, options: StoryOptions) -> Accepted:
        """Accept a new story, or the one of the same idempotency key. Anything refused
        (a limit, the bus down) leaves no row and publishes nothing."""
        self.check_limits(options)
        existing = await self._existing(user_id, options)
        if existing is not None:
            return existing
        # Its records land in this gateway's home slice of the stream, which it reads.
        story_id = self._relay.mint()
        # The user's preferences (rules off, words, default focus) are read while the bus
        # answers where the story starts: the two round trips overlap.
        prefs, ((partition, offset), outcomes_start) = await asyncio.gather(
            self._preferences.get(user_id), self._history_start(story_id)
        )
        if prefs.focus is not None and "focus" not in options.model_fields_set:
            options = options.model_copy(update={"focus": list(prefs.focus)})
        # Admitted by the user's limits where the row is written (a refusal writes none).
        try:
            await self._store.create_story(
                story_id=story_id,
                user_id=user_id,
                options=options,
                stream_partition=partition,
                stream_offset=offset,
                admission=self._limiter.stories,
            )
        except Conflict:
            # The same idempotency key raced in: the first one wins, this one joins it.
            existing = await self._existing(user_id, options)
            if existing is None:
                raise
            return existing
        command = StorySubmitted(
            story_id=story_id,
            user_id=user_id,
            stream_offset=offset,
            outcomes_offset=outcomes_start,
            ignores=(
                UserIgnores(rules_off=list(prefs.rules_off), words=list(prefs.words))
                if prefs.rules_off or prefs.words
                else None
            ),
            **options.model_dump(),
        )
        return Accepted(story_id, partition, offset - 1, await self._publish(command))

    async def _history_start(self, story_id: str) -> tuple[tuple[int, int], int]:
        """The story's stream partition and first offset there, and its first offset on
        the outcome topic; 503 (nothing accepted) when the bus does not answer in time."""
        try:
            stream_ends, outcome_ends = await asyncio.gather(
                self._stream_ends.get(), self._outcome_ends.get()
            )
        except (TimeoutError, BusUnavailable) as exc:
            raise NotReady("the event bus is unavailable; nothing was accepted") from exc
        partition = self._bus.partition_for(self._topics.stream, story_id, len(stream_ends))
        outcomes = self._bus.partition_for(self._topics.outcomes, story_id, len(outcome_ends))
        return (partition, stream_ends.get(partition, 0)), outcome_ends.get(outcomes, 0)

    async def _publish(self, command: StorySubmitted) -> Subscription:
        """Produce the command of a story whose row is written; subscribed first, so no
        event can slip by before the watcher starts."""
        try:
            sub = await self._relay.subscribe(command.story_id)
        except BaseException:
            # Gone before its command was produced (the client left while the relay
            # moved to its partition): not accepted, so no row.
            await self._store.delete(command.story_id)
            raise
        submitted = asyncio.ensure_future(self._commands.submit(command))
        try:
            try:
                await asyncio.shield(submitted)
            except NotPublished as exc:
                # Not on the bus, and never will be: forget the row, the client retries.
                await self._store.delete(command.story_id)
                log.warning(
                    "story not accepted: the bus refused it", extra={"story_id": command.story_id}
                )
                raise NotReady("the event bus is unavailable; nothing was accepted") from exc
            except asyncio.CancelledError:
                # The client left while its command was on its way: its verdict is still
                # due, and a refused one must leave no row (a retry with the same
                # idempotency key would be told it was accepted).
                submitted.add_done_callback(lambda done: self._forget_if_refused(done, command))
                raise
        except BaseException:
            self._relay.unsubscribe(sub)
            raise
        return sub

    def _forget_if_refused(self, done: asyncio.Future[Position], command: StorySubmitted) -> None:
        if done.cancelled() or not isinstance(done.exception(), NotPublished):
            return
        task = asyncio.ensure_future(self._forget(command.story_id))
        self._forgetting.add(task)
        task.add_done_callback(self._forgetting.discard)

    async def _forget(self, story_id: str) -> bool:
        try:
            return await self._store.delete(story_id)
        except Exception as exc:
            log.error("the row of a refused story stays: %r", exc, extra={"story_id": story_id})
            return False

    async def _existing(self, user_id: str, options: StoryOptions) -> Accepted | None:
        # ``is None``: "" is a key too, as the store's unique index sees it.
        if options.idempotency_key is None:
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
            end = (await self._bus.end_offsets(self._topics.stream)).get(story.stream_partition, 0)
        except BusUnavailable as exc:
            raise NotReady("the event bus is unavailable; try again") from exc
        if after >= end:
            # Past the last record: no cursor this service gave out (a story's own start
            # is always below the end, so only a cursor lands here).
            raise InvalidMessage("cursor is not one this service gave out")
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
        except NotPublished as exc:
            raise NotReady("the event bus is unavailable; try again") from exc

    def watch(self, accepted: Accepted) -> AsyncIterator[Record]:
        return self._relay.follow(
            accepted.story_id, accepted.partition, accepted.after, accepted.subscription
        )


__all__ = ["Accepted", "NotFound", "Stories"]
