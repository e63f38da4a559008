"""The embedded bus: Kafka's semantics inside one event loop, for a single process.

Topics are created on first use with ``settings.topic_partitions`` partitions (as Kafka's
auto-create does), keys go to the partition Kafka would pick, offsets are positions in
partition logs that keep what the topic's retention keeps (``memory_log.py``), all of
them within ``memory_bus_bytes``. Nothing here uses threads.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from typing import Literal

from amplify_stream.bus.base import (
    Bus,
    BusFenced,
    BusUnavailable,
    GroupConsumer,
    Headers,
    Isolation,
    Position,
    Producer,
    RebalanceCallback,
    Record,
    ShareCallback,
    Slices,
    TopicPartition,
    TopicSpec,
)
from amplify_stream.bus.memory_group import Group, MemoryGroupConsumer
from amplify_stream.bus.memory_log import Budget, Retention, Topic, Txn
from amplify_stream.bus.memory_slices import MemorySlices, SliceGroup
from amplify_stream.bus.partitioner import partition_for_key
from amplify_stream.config.groups import BusSettings


class MemoryBus(Bus):
    name = "memory"

    def __init__(self, settings: BusSettings) -> None:
        self._default_partitions = settings.topic_partitions
        self._budget = Budget(settings.memory_bus_bytes, self._unread_from)
        self._topics: dict[str, Topic] = {}
        self._groups: dict[str, Group] = {}
        self._slice_groups: dict[str, SliceGroup] = {}
        # The live producer of each transactional id; a newer one fences the older.
        self._txn_owners: dict[str, MemoryProducer] = {}
        # The positions of the readers outside any group (``read``), by topic.
        self._readers: dict[str, list[dict[int, int]]] = {}
        self._running = False
        # False while an outage is simulated (``set_reachable``).
        self.reachable = True

    def set_reachable(self, reachable: bool) -> None:
        """Simulate the broker going away and coming back (for fault tests): meanwhile
        sends, transactions, offset lookups, history reads and pings raise
        ``BusUnavailable``, as the Kafka backend's do."""
        self.reachable = reachable

    def check_reachable(self) -> None:
        if not self.reachable:
            raise BusUnavailable("the memory bus is unreachable")

    async def start(self) -> None:
        self._running = True

    async def close(self) -> None:
        self._running = False

    async def ensure_topics(self, specs: Sequence[TopicSpec]) -> None:
        for spec in specs:
            retention = Retention(spec.retention_ms, spec.compacted)
            if (log := self._topics.get(spec.name)) is not None:
                log.retention = retention  # as a topic's configuration is altered
            else:
                self._topics[spec.name] = Topic(spec.name, spec.partitions, retention, self._budget)

    async def ping(self) -> None:
        if not self._running:
            raise BusUnavailable("the memory bus is not running")
        self.check_reachable()

    def producer(
        self,
        *,
        transactional_id: str | None = None,
        low_latency: bool = False,
        client_id: str = "amplify",
        request_timeout_s: float | None = None,
    ) -> Producer:
        if low_latency and transactional_id is not None:
            raise ValueError("a transactional producer is not low_latency (it lingers)")
        return MemoryProducer(self, transactional_id)

    def group_consumer(
        self,
        topics: Sequence[str],
        group_id: str,
        *,
        isolation: Isolation = "read_committed",
        on_assigned: RebalanceCallback | None = None,
        on_revoked: RebalanceCallback | None = None,
        client_id: str = "amplify",
    ) -> GroupConsumer:
        return MemoryGroupConsumer(
            self.topic, topics, self.group(group_id), isolation, on_assigned, on_revoked
        )

    def slices(self, topic: str, group_id: str, on_share: ShareCallback) -> Slices:
        group = self._slice_groups.get(group_id)
        if group is None:
            group = self._slice_groups[group_id] = SliceGroup(self.topic(topic).partitions)
        return MemorySlices(group, on_share)

    @asynccontextmanager
    async def read(
        self,
        topic: str,
        start: dict[int, int] | Literal["end"],
        *,
        isolation: Isolation = "read_uncommitted",
    ) -> AsyncIterator[AsyncIterator[Record]]:
        log = self.topic(topic)
        if start == "end":
            positions = {p: log.end(p) for p in range(log.partitions)}
        else:
            if unknown := [p for p in start if not 0 <= p < log.partitions]:
                raise ValueError(f"topic {topic!r} has no partitions {unknown}")
            positions = {p: log.valid_offset(p, offset) for p, offset in start.items()}
        wakeup = asyncio.Event()
        log.watchers.add(wakeup)
        reading = self._readers.setdefault(topic, [])
        reading.append(positions)  # moved on by _follow as it reads
        records = _follow(log, positions, isolation, wakeup)
        try:
            yield records
        finally:
            await records.aclose()
            log.watchers.discard(wakeup)
            # By identity: two readers of one partition at one offset hold equal dicts.
            reading[:] = [r for r in reading if r is not positions]

    async def read_range(
        self, topic: str, partition: int, start: int, end: int, *, isolation: Isolation
    ) -> list[Record]:
        self.check_reachable()
        log = self.topic(topic)
        wakeup = asyncio.Event()
        log.watchers.add(wakeup)
        try:
            found: list[Record] = []
            position = start
            while position < end:
                records, position = log.fetch(partition, position, isolation, None, until=end)
                found += records
                if position < end:
                    # An open transaction holds the last stable offset back.
                    wakeup.clear()
                    await wakeup.wait()
            return found
        finally:
            log.watchers.discard(wakeup)

    async def end_offsets(self, topic: str) -> dict[int, int]:
        self.check_reachable()
        log = self.topic(topic)
        return {p: log.end(p) for p in range(log.partitions)}

    async def begin_offsets(self, topic: str) -> dict[int, int]:
        self.check_reachable()
        log = self.topic(topic)
        return {p: log.begin(p) for p in range(log.partitions)}

    def partition_for(self, topic: str, key: str, partitions: int) -> int:
        return partition_for_key(key, partitions)

    def topic(self, name: str) -> Topic:
        """The topic, created with the default partition count on first use."""
        log = self._topics.get(name)
        if log is None:
            log = self._topics[name] = Topic(
                name, self._default_partitions, Retention(), self._budget
            )
        return log

    def _unread_from(self, tp: TopicPartition) -> int | None:
        """The lowest offset of ``tp`` that a reader of its topic has yet to read: a
        group that has read it, up to its committed offset, members or not (one that has
        committed nothing of it yet would start from the earliest record: it holds
        everything back), and a
        reader outside any group (the gateway's relay), up to its position. None: no one
        reads it."""
        unread = [
            group.committed.get(tp, 0)
            for group in self._groups.values()
            if tp.topic in group.topics_read or tp in group.committed
        ]
        unread += [
            positions[tp.partition]
            for positions in self._readers.get(tp.topic, ())
            if tp.partition in positions
        ]
        return min(unread, default=None)

    def group(self, group_id: str) -> Group:
        group = self._groups.get(group_id)
        if group is None:
            group = self._groups[group_id] = Group(group_id)
        return group

    def claim_transactional_id(self, transactional_id: str, producer: MemoryProducer) -> None:
        previous = self._txn_owners.get(transactional_id)
        if previous is not None and previous is not producer:
            previous.fence()
        self._txn_owners[transactional_id] = producer

    def release_transactional_id(self, transactional_id: str, producer: MemoryProducer) -> None:
        if self._txn_owners.get(transactional_id) is producer:
            del self._txn_owners[transactional_id]


async def _follow(
    log: Topic, positions: dict[int, int], isolation: Isolation, wakeup: asyncio.Event
) -> AsyncGenerator[Record, None]:
    while True:
        wakeup.clear()  # before fetching: an append from now on wakes us
        batch: list[Record] = []
        for partition, position in positions.items():
            records, positions[partition] = log.fetch(partition, position, isolation, None)
            batch.extend(records)
        if not batch:
            await wakeup.wait()
        for record in batch:
            yield record


class MemoryProducer(Producer):
    def __init__(self, bus: MemoryBus, transactional_id: str | None) -> None:
        self._bus = bus
        self._transactional_id = transactional_id
        self._txn: Txn | None = None
        self._state: Literal["new", "running", "fenced", "stopped"] = "new"

    async def start(self) -> None:
        if self._transactional_id is not None:
            self._bus.claim_transactional_id(self._transactional_id, self)
        self._state = "running"

    async def stop(self) -> None:
        if self._txn is not None:
            self._end(self._txn, "aborted")
        if self._transactional_id is not None:
            self._bus.release_transactional_id(self._transactional_id, self)
        self._state = "stopped"

    def fence(self) -> None:
        if self._txn is not None:
            self._end(self._txn, "aborted")
        self._state = "fenced"

    def _check_running(self) -> None:
        self._bus.check_reachable()
        if self._state == "fenced":
            raise BusFenced(f"producer {self._transactional_id!r} was fenced")
        if self._state != "running":
            raise RuntimeError(f"the producer is {self._state}, not running")

    async def send(
        self,
        topic: str,
        key: str,
        value: bytes | None,
        headers: Headers = (),
        timestamp_ms: int | None = None,
    ) -> Awaitable[Position]:
        self._check_running()
        if self._transactional_id is not None and self._txn is None:
            raise RuntimeError("a transactional producer sends only inside transaction()")
        log = self._bus.topic(topic)
        position = log.append(
            partition_for_key(key, log.partitions),
            key,
            b"" if value is None else value,  # a tombstone reads as empty, as from Kafka
            headers,
            self._txn,
            timestamp_ms,
        )
        future: asyncio.Future[Position] = asyncio.get_running_loop().create_future()
        future.set_result(position)
        return future

    async def flush(self) -> None:
        """Nothing is ever pending."""

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        self._check_running()
        if self._transactional_id is None:
            raise RuntimeError("transactions need a producer made with a transactional_id")
        if self._txn is not None:
            raise RuntimeError("a transaction is already open")
        txn = self._txn = Txn()
        try:
            yield
        except BaseException:
            self._end(txn, "aborted")
            raise
        if txn.state != "open":  # fenced meanwhile: already aborted
            raise BusFenced(f"producer {self._transactional_id!r} was fenced")
        if not self._bus.reachable:
            self._end(txn, "aborted")
            self._bus.check_reachable()
        self._end(txn, "committed")

    async def send_offsets_to_transaction(
        self, offsets: dict[TopicPartition, int], group_id: str
    ) -> None:
        self._check_running()
        if self._txn is None:
            raise RuntimeError("send_offsets_to_transaction needs an open transaction")
        self._txn.offsets.setdefault(group_id, {}).update(offsets)

    def _end(self, txn: Txn, state: Literal["committed", "aborted"]) -> None:
        txn.state = state
        if self._txn is txn:
            self._txn = None
        if state == "committed":
            for group_id, offsets in txn.offsets.items():
                self._bus.group(group_id).committed.update(offsets)
        for log in txn.topics:
            log.wake()
