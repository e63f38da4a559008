"""One story's events to a low-latency topic (the stream, the narration segments), in
order, never awaited one by one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable

from amplify_stream.bus.base import Position, Producer
from amplify_stream.events import (
    ErrorEvent,
    NarrationCancelled,
    NarrationEnd,
    NarrationSegment,
    StoryEvent,
    encode,
    headers_for,
)
from producers.lease import Lease


class StreamPublisher:
    """Publishes one story's events in order; ``drain`` awaits every send of that story.

    Sends are queued without waiting for the broker (records of one key keep their
    order in the producer), so a delta costs no round trip on the hot path.

    With a ``lease`` (the worker's hold on the story's input partition) nothing is sent
    unless the worker surely still owns that partition: these topics are not
    transactional, so the broker would take a zombie's records; the lease refuses them.
    """

    def __init__(
        self,
        producer: Producer,
        topic: str,
        story_id: str,
        user_id: str,
        lease: Lease | None = None,
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._story_id = story_id
        self._user_id = user_id
        self._lease = lease
        self._pending: list[Awaitable[Position]] = []

    async def publish(
        self,
        event: StoryEvent | ErrorEvent | NarrationSegment | NarrationEnd | NarrationCancelled,
    ) -> None:
        # Stamped before the lease is asked: a record that was written carries the moment
        # its writer still surely owned the story (a process frozen between the check and
        # the send writes it on waking, stamped before the freeze, not after it).
        while True:
            decided_ms = int(time.time() * 1000)
            if self._lease is None or self._lease.holds():
                break
            await self._lease.hold()
        event.user_id = self._user_id
        self._pending.append(
            await self._producer.send(
                self._topic,
                self._story_id,
                encode(event),
                headers_for(event.type, attempt=getattr(event, "attempt", None)),
                timestamp_ms=decided_ms,
            )
        )
        if len(self._pending) >= 256:
            await self.drain()

    async def drain(self) -> None:
        """Raise if any queued send of this story failed."""
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending)

    async def settle(self) -> None:
        """Wait until every queued send of this story has landed or failed, raising
        nothing: after a run that failed on the bus, so that none of its records (which
        the producer may still retry) can land after the next run's first one."""
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
