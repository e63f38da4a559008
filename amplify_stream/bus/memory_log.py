"""The memory bus's storage: append-only partition logs, Kafka-style transactions.

Transactional records are appended at once (so their positions are known and the send
future resolves, as on Kafka) but carry their transaction. ``read_committed`` readers
stop at the first record of a still-open transaction (Kafka's last stable offset) and
skip aborted ones; ``read_uncommitted`` readers see everything, as on Kafka.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Literal

from amplify_stream.bus.base import Headers, Isolation, Position, Record, TopicPartition

TxnState = Literal["open", "committed", "aborted"]


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


class Topic:
    def __init__(self, name: str, partitions: int) -> None:
        if partitions < 1:
            raise ValueError(f"topic {name!r} needs at least one partition")
        self.name = name
        self.logs: list[list[Entry]] = [[] for _ in range(partitions)]
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
        offset = len(log)
        record = Record(
            self.name,
            partition,
            offset,
            key,
            value,
            tuple(headers),
            int(time.time() * 1000) if timestamp_ms is None else timestamp_ms,
        )
        log.append(Entry(record, txn))
        if txn is not None:
            txn.topics.add(self)
        self.wake()
        return Position(self.name, partition, offset)

    def wake(self) -> None:
        for event in self.watchers:
            event.set()

    def end(self, partition: int) -> int:
        return len(self.logs[partition])

    def valid_offset(self, partition: int, offset: int) -> int:
        """An offset outside the log resets to the earliest, as ``auto_offset_reset`` does."""
        return offset if 0 <= offset <= len(self.logs[partition]) else 0

    def fetch(
        self, partition: int, position: int, isolation: Isolation, limit: int | None
    ) -> tuple[list[Record], int]:
        """Records from ``position`` on, and the position after them."""
        log = self.logs[partition]
        records: list[Record] = []
        committed_only = isolation == "read_committed"
        while position < len(log) and (limit is None or len(records) < limit):
            entry = log[position]
            if committed_only and entry.txn is not None:
                if entry.txn.state == "open":
                    break  # the last stable offset: nothing past it is visible yet
                if entry.txn.state == "aborted":
                    position += 1
                    continue
            records.append(entry.record)
            position += 1
        return records, position
