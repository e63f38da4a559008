"""Results for analytics and the store: one transaction per batch, so a read_committed
consumer sees a story's outcome records all together or not at all."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from amplify_stream.bus.base import Producer, TopicPartition
from amplify_stream.events import Outcome, encode, headers_for


class OutcomePublisher:
    def __init__(self, producer: Producer, topic: str) -> None:
        self._producer = producer
        self._topic = topic
        # A transactional producer has one transaction open at a time; stories finish
        # concurrently, so their transactions take turns.
        self._lock = asyncio.Lock()

    async def publish(
        self,
        outcomes: Sequence[Outcome],
        *,
        offsets: dict[TopicPartition, int] | None = None,
        group_id: str | None = None,
    ) -> None:
        async with self._lock, self._producer.transaction():
            for outcome in outcomes:
                await self._producer.send(
                    self._topic, outcome.story_id, encode(outcome), headers_for(outcome.type)
                )
            if offsets and group_id:
                await self._producer.send_offsets_to_transaction(offsets, group_id)
