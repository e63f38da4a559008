"""Results for analytics and the store, in transactions, so a read_committed consumer
sees a story's outcome records all together or not at all.

Group commit: a transactional producer has one transaction open at a time, and a commit
costs round trips to the coordinator. Stories that finish while a transaction is being
committed wait together and go out in the next one, so throughput does not stop at one
story per commit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from amplify_stream.bus import is_bus_error
from amplify_stream.bus.base import Producer
from amplify_stream.events import Outcome, encode, headers_for


class OutcomePublisher:
    def __init__(self, producer: Producer, topic: str) -> None:
        self._producer = producer
        self._topic = topic
        self._lock = asyncio.Lock()
        self._waiting: list[tuple[Sequence[Outcome], asyncio.Future[None]]] = []

    async def publish(self, outcomes: Sequence[Outcome]) -> None:
        """Return once ``outcomes`` are committed (in this or a shared transaction)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((outcomes, done))
        async with self._lock:
            if done.done():
                return done.result()  # went out in the transaction before ours
            batch, self._waiting = self._waiting, []
            try:
                async with self._producer.transaction():
                    sent = [
                        await self._producer.send(
                            self._topic,
                            outcome.story_id,
                            encode(outcome),
                            headers_for(outcome.type),
                        )
                        for items, _ in batch
                        for outcome in items
                    ]
                    # Every record acknowledged before the commit: a record the broker
                    # refused (OutOfOrderSequenceNumber after a broker restart, seen) does
                    # not fail the commit by itself, and the outcome would be lost.
                    await asyncio.gather(*sent)
            except BaseException as exc:
                # Aborted: nothing of the batch is visible. The others are put back; the
                # next of them to get the lock tries again (and sees its own error, if any).
                self._waiting[:0] = [(items, other) for items, other in batch if other is not done]
                if is_bus_error(exc):
                    await self._renew_producer()
                raise
            for _, other in batch:
                if other is not done:
                    other.set_result(None)

    async def _renew_producer(self) -> None:
        """A transaction that failed on the bus can leave the producer in an error state
        that no later transaction leaves: start it again (same transactional id, so the
        coordinator fences the old session and aborts whatever it left open)."""
        with contextlib.suppress(Exception):
            await self._producer.stop()
        with contextlib.suppress(Exception):
            await self._producer.start()
