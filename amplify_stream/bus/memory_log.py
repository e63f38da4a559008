"""The memory bus's storage: partition logs with Kafka's retention, Kafka-style transactions.

Transactional records are appended at once (so their positions are known and the send
future resolves, as on Kafka) but carry their transaction. ``read_committed`` readers
stop at the first record of a still-open transaction (Kafka's last stable offset) and
skip aborted ones; ``read_uncommitted`` readers see everything, as on Kafka.

Retention, as Kafka applies a topic's configuration (``TopicSpec``), checked at each
append of the partition:
- ``retention_ms``: records older than that (by their timestamp) go from the head;
- compacted topics keep the newest record of each key (a tombstone, for
  ``TOMBSTONE_RETENTION_MS``, Kafka's ``delete.retention.ms``), cleaned when half the
  partition is records appended since its last cleaning (``min.cleanable.dirty.ratio``);
- the embedded bus's own bound (``Budget``), on all its records together (keys, values,
  headers): past it, the oldest record of the partition that holds the most goes first,
  so a busy topic (the stream, with its audio) has the room that quiet ones do not use,
  and the quiet ones keep their history; but never a record that a reader of the topic
  has yet to read (a consumer group, up to its committed offset; a reader outside any
  group, up to its position), so an accepted command is never dropped unread.
No record of a transaction still open goes. The log start offset moves with what goes;
a reader below it is moved up to it (``auto_offset_reset=earliest``), and
``begin_offsets`` tells it, so a resume past it is refused as on Kafka.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from amplify_stream.bus.base import Headers, Isolation, Position, Record, TopicPartition

TxnState = Literal["open", "committed", "aborted"]
TOMBSTONE_RETENTION_MS = 24 * 3600 * 1000
# A compacted partition is not cleaned before this many records were appended since the
# last cleaning (a cleaning reads the whole partition).
MIN_CLEANABLE = 256
# Records are counted at what they hold, plus what the process spends on each beside it
# (the record, its entry, its headers: measured with tracemalloc).
RECORD_OVERHEAD = 350


@dataclass(eq=False)
class Txn:
    state: TxnState = "open"
    # Topics written, to wake their readers when the outcome is known.
    topics: set[Topic] = field(default_factory=set)
    # Consumer offsets per group, committed together with the records.
    offsets: dict[str, dict[TopicPartition, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Entry:
    record: Record
    txn: Txn | None
    size: int

    @property
    def offset(self) -> int:
        return self.record.offset

    @property
    def open(self) -> bool:
        return self.txn is not None and self.txn.state == "open"

    @property
    def aborted(self) -> bool:
        return self.txn is not None and self.txn.state == "aborted"


@dataclass(frozen=True, slots=True)
class Retention:
    """What a topic keeps (``TopicSpec``'s)."""

    retention_ms: int | None = None
    compacted: bool = False


class PartitionLog:
    """One partition: its records in offset order (with gaps once compacted) from the
    log start offset ``start`` to the end offset ``end``."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.head = 0  # entries before it are gone (dropped lazily from the list)
        self.start = 0
        self.end = 0
        self.bytes = 0
        self.dirty = 0  # appended since the last cleaning (compacted topics)
        self.clean = 0  # records kept by the last cleaning

    def append(self, entry: Entry) -> None:
        self.entries.append(entry)
        self.end = entry.offset + 1
        self.bytes += entry.size
        self.dirty += 1

    def index(self, offset: int) -> int:
        """The index of the first entry at or after ``offset``."""
        return bisect_left(self.entries, offset, lo=self.head, key=lambda e: e.offset)

    def drop_head(self) -> None:
        entry = self.entries[self.head]
        self.head += 1
        self.bytes -= entry.size
        self.start = self.entries[self.head].offset if self.head < len(self.entries) else self.end
        if self.head > 1024 and self.head * 2 > len(self.entries):
            del self.entries[: self.head]
            self.head = 0

    def compact(self, now_ms: int) -> None:
        """Keep the newest record of each key, up to the first record of an open
        transaction (what may still be aborted is not cleaned); aborted records go, and
        tombstones older than ``TOMBSTONE_RETENTION_MS``."""
        live = self.entries[self.head :]
        boundary = next((i for i, e in enumerate(live) if e.open), len(live))
        newest: dict[str, int] = {}
        for entry in live[:boundary]:
            if not entry.aborted:
                newest[entry.record.key] = entry.offset
        kept = [
            e
            for e in live[:boundary]
            if not e.aborted
            and newest[e.record.key] == e.offset
            and (e.record.value or now_ms - e.record.timestamp_ms < TOMBSTONE_RETENTION_MS)
        ]
        self.entries = kept + live[boundary:]
        self.head = 0
        self.bytes = sum(e.size for e in self.entries)
        self.clean = len(self.entries)
        self.dirty = 0


class Budget:
    """The bytes all the bus's records may take (None: no bound), and who holds them.
    ``unread``: the lowest offset of a partition that a reader has yet to read (None:
    no reader holds it back), which nothing here passes."""

    def __init__(
        self,
        max_bytes: int | None,
        unread: Callable[[TopicPartition], int | None] = lambda tp: None,
    ) -> None:
        self.max_bytes = max_bytes
        self._unread = unread
        self.topics: list[Topic] = []

    def total(self) -> int:
        return sum(log.bytes for topic in self.topics for log in topic.logs)

    def enforce(self) -> None:
        """Past the bound: the head of the fullest partition that can give one, then
        again, until the records fit or none can go."""
        if self.max_bytes is None:
            return
        total = self.total()
        if total > self.max_bytes:
            # A compacted partition gives its superseded records first (a cleaning, early):
            # its newest record of each key it never gives.
            now_ms = int(time.time() * 1000)
            for topic in self.topics:
                if topic.retention.compacted:
                    for log in topic.logs:
                        if log.dirty:
                            log.compact(now_ms)
            total = self.total()
        blocked: set[tuple[str, int]] = set()
        while total > self.max_bytes:
            fullest = max(
                (
                    (log.bytes, topic, p)
                    for topic in self.topics
                    for p, log in enumerate(topic.logs)
                    # A compacted topic is bounded by its keys, and its newest record per
                    # key is the truth (snapshots): the bound never takes one.
                    if not topic.retention.compacted
                    and log.head < len(log.entries)
                    and (topic.name, p) not in blocked
                ),
                default=None,
                key=lambda candidate: candidate[0],
            )
            if fullest is None:
                return  # everything left is unread or in an open transaction
            _, topic, p = fullest
            log = topic.logs[p]
            entry = log.entries[log.head]
            unread = self._unread(TopicPartition(topic.name, p))
            if entry.open or (unread is not None and entry.offset >= unread):
                blocked.add((topic.name, p))
                continue
            total -= entry.size
            log.drop_head()


class Topic:
    def __init__(
        self,
        name: str,
        partitions: int,
        retention: Retention = Retention(),
        budget: Budget | None = None,
    ) -> None:
        if partitions < 1:
            raise ValueError(f"topic {name!r} needs at least one partition")
        self.name = name
        self.retention = retention
        self._budget = budget or Budget(None)
        self._budget.topics.append(self)
        self.logs = [PartitionLog() for _ in range(partitions)]
        # One event per reader or group member; set on every change they may wait for.
        self.watchers: set[asyncio.Event] = set()

    @property
    def partitions(self) -> int:
        return len(self.logs)

    def append(
        self,
        partition: int,
        key: str,
        value: bytes,
        headers: Headers,
        txn: Txn | None,
        timestamp_ms: int | None = None,
    ) -> Position:
        log = self.logs[partition]
        offset = log.end
        now_ms = int(time.time() * 1000)
        record = Record(
            self.name,
            partition,
            offset,
            key,
            value,
            tuple(headers),
            now_ms if timestamp_ms is None else timestamp_ms,
        )
        size = len(key) + len(value) + sum(len(k) + len(v) for k, v in headers) + RECORD_OVERHEAD
        log.append(Entry(record, txn, size))
        if txn is not None:
            txn.topics.add(self)
        self.enforce(partition, now_ms)
        self.wake()
        return Position(self.name, partition, offset)

    def enforce(self, partition: int, now_ms: int | None = None) -> None:
        """Apply the topic's retention to ``partition`` now."""
        log = self.logs[partition]
        policy = self.retention
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        if policy.compacted and log.dirty >= max(MIN_CLEANABLE, log.clean):
            log.compact(now_ms)
        if policy.retention_ms is not None:
            oldest = now_ms - policy.retention_ms
            while log.head < len(log.entries):
                entry = log.entries[log.head]
                if entry.open or entry.record.timestamp_ms >= oldest:
                    break
                log.drop_head()
        self._budget.enforce()

    def wake(self) -> None:
        for event in self.watchers:
            event.set()

    def begin(self, partition: int) -> int:
        return self.logs[partition].start

    def end(self, partition: int) -> int:
        return self.logs[partition].end

    def valid_offset(self, partition: int, offset: int) -> int:
        """An offset outside the log resets to the earliest, as ``auto_offset_reset`` does."""
        log = self.logs[partition]
        return offset if log.start <= offset <= log.end else log.start

    def fetch(
        self,
        partition: int,
        position: int,
        isolation: Isolation,
        limit: int | None,
        until: int | None = None,
    ) -> tuple[list[Record], int]:
        """Records from ``position`` on (from the log start when it is below it), before
        ``until`` when given, and the position after them."""
        log = self.logs[partition]
        position = max(position, log.start)
        stop = log.end if until is None else min(until, log.end)
        records: list[Record] = []
        committed_only = isolation == "read_committed"
        i = log.index(position)
        while i < len(log.entries) and log.entries[i].offset < stop:
            if limit is not None and len(records) >= limit:
                return records, log.entries[i].offset
            entry = log.entries[i]
            i += 1
            if committed_only and entry.txn is not None:
                if entry.txn.state == "open":
                    return records, entry.offset  # the last stable offset
                if entry.txn.state == "aborted":
                    continue
            records.append(entry.record)
        # Past every record before ``stop`` (gaps a cleaning left included).
        return records, max(position, stop)
