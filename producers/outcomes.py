"""Results for analytics and the store, in transactions, so a read_committed consumer
sees a story's outcome records all together or not at all.

Group commit: a transactional producer has one transaction open at a time, and a commit
costs round trips to the coordinator. Stories that finish while a transaction is being
committed wait together and go out in the next one, so throughput does not stop at one
story per commit.

Fencing: a worker gives each input partition it owns a publisher of its own, whose
transactional id is that partition's (``consumers/ownership.py``). Starting it fences
every older producer of the id, so a zombie that lost the partition can never commit an
outcome for it; and with a ``lease`` nothing is started, renewed or committed unless the
worker surely owns the partition, so a zombie never fences the rightful owner back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from amplify_stream.bus import BusFenced, BusUnavailable, is_bus_error
from amplify_stream.bus.base import Headers, Position, Producer, TopicPartition
from amplify_stream.events import Outcome, encode, headers_for
from producers.lease import Lease

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OutRecord:
    """A record of a checkpoint (``value`` None: a tombstone)."""

    topic: str
    key: str
    value: bytes | None
    headers: Headers = ()


class OutcomePublisher:
    def __init__(self, producer: Producer, topic: str, lease: Lease | None = None) -> None:
        self._producer = producer
        self._topic = topic
        self._lease = lease
        self._lock = asyncio.Lock()
        self._waiting: list[tuple[Sequence[Outcome], asyncio.Future[None]]] = []

    async def start(self) -> None:
        """Start the producer: for a transactional one, Kafka's InitProducerId bumps the
        id's epoch, fencing every producer that had it before."""
        await self._held()
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish(self, outcomes: Sequence[Outcome]) -> None:
        """Return once ``outcomes`` are committed (in this or a shared transaction)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((outcomes, done))
        async with self._lock:
            if done.done():
                return done.result()  # went out in the transaction before ours
            await self._held()
            batch, self._waiting = self._waiting, []
            try:
                async with self._producer.transaction():
                    sent = [
                        await self._producer.send(
                            self._topic,
                            outcome.story_id,
                            encode(outcome),
                            headers_for(outcome.type, attempt=outcome.attempt),
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
                if isinstance(exc, BusFenced):
                    raise await self._fenced(exc) from exc
                if is_bus_error(exc):
                    await self._renew_producer()
                raise
            for _, other in batch:
                if other is not done:
                    other.set_result(None)

    async def checkpoint(
        self, records: Sequence[OutRecord], offsets: dict[TopicPartition, int], group_id: str
    ) -> list[Position]:
        """Write ``records`` and commit ``group_id``'s ``offsets`` in one transaction: a
        worker whose state lives in memory (snapshots, with the outcomes of the work they
        record) and its place in its input, so that after a crash the state and the place
        agree. Where each record landed, once committed. Raises as ``publish`` does."""
        async with self._lock:
            await self._held()
            try:
                async with self._producer.transaction():
                    sent = [
                        await self._producer.send(r.topic, r.key, r.value, r.headers)
                        for r in records
                    ]
                    positions = await asyncio.gather(*sent)
                    await self._producer.send_offsets_to_transaction(offsets, group_id)
            except BaseException as exc:
                if isinstance(exc, BusFenced):
                    raise await self._fenced(exc) from exc
                if is_bus_error(exc):
                    await self._renew_producer()
                raise
        return positions

    async def _held(self) -> None:
        if self._lease is not None:
            await self._lease.hold()

    async def _fenced(self, exc: BusFenced) -> Exception:
        """What a fenced transaction means. Either a newer owner of the partition started
        this id (it is theirs now), or, while the partition is still ours, the coordinator
        aborted a transaction that outlived its timeout, which fences too. The group's
        next word on this member tells which: a revocation (``PartitionLost``), or a
        renewal, and then the producer starts again and the batch is retried."""
        if self._lease is None:
            return exc
        log.warning("fenced: %s; asking the group whether the partition is still ours", exc)
        await self._lease.after_fence()
        log.warning("fenced while owning the partition (a transaction timed out): restarting")
        await self._renew_producer()
        return BusUnavailable(f"the transaction was aborted by its coordinator: {exc}")

    async def _renew_producer(self) -> None:
        """A transaction that failed on the bus can leave the producer in an error state
        that no later transaction leaves: start it again (same transactional id, so the
        coordinator fences the old session and aborts whatever it left open). Only while
        the partition is surely ours: a zombie must not fence its successor."""
        with contextlib.suppress(Exception):
            await self._producer.stop()
        await self._held()
        with contextlib.suppress(Exception):
            await self._producer.start()
