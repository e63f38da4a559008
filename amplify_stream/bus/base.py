"""The event bus port. Two backends implement it: ``kafka`` (aiokafka) and ``memory``.

Only what the services rely on is here, with Kafka's semantics:
- topics with partitions; a record goes to the partition of its key, so one story's
  events keep their order;
- a record's position ``(partition, offset)`` is stable, and is the client's cursor;
- consumer groups share partitions between members and keep committed offsets;
- readers outside any group can start at any offset (resume) or at the end (live relay);
- transactional producers make a batch of records visible all at once or never
  (``read_committed`` consumers skip aborted ones), optionally with consumer offsets.
"""

from __future__ import annotations

import abc
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Literal

from amplify_stream.bus.membership import Membership

Headers = Sequence[tuple[str, bytes]]
Isolation = Literal["read_committed", "read_uncommitted"]


@dataclass(frozen=True, slots=True)
class TopicPartition:
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class Position:
    """Where a record landed."""

    topic: str
    partition: int
    offset: int

    @property
    def cursor(self) -> str:
        return format_cursor(self.partition, self.offset)


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: str
    value: bytes
    headers: Headers = field(default_factory=tuple)
    timestamp_ms: int = 0

    @property
    def cursor(self) -> str:
        return format_cursor(self.partition, self.offset)

    def header(self, name: str) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


def format_cursor(partition: int, offset: int) -> str:
    return f"{partition}-{offset}"


# What ``format_cursor`` writes, as a JSON Schema pattern: ASCII digits only (``isdigit``
# would also take other scripts' digits, which no cursor of this service holds).
CURSOR_PATTERN = r"^[0-9]+-[0-9]+$"
_CURSOR = re.compile(r"([0-9]+)-([0-9]+)")


def parse_cursor(cursor: str) -> tuple[int, int]:
    """``"2-41"`` -> ``(2, 41)``; ``ValueError`` for anything else."""
    found = _CURSOR.fullmatch(cursor)
    if found is None:
        raise ValueError(f"not a cursor: {cursor!r}")
    return int(found[1]), int(found[2])


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    retention_ms: int | None = None
    # Compacted: the newest record of each key is kept for ever (a tombstone removes it).
    compacted: bool = False


class BusError(Exception):
    """A failure of the bus. Each backend raises these in place of its client's own
    errors, so that callers never handle Kafka's (or any backend's) exceptions."""


class BusUnavailable(BusError):
    """The bus did not do what was asked: the broker does not answer, timed out, or
    refused for now (not enough replicas, a rebalance, this member left its group). A
    passing failure: the same call is to be tried again."""


class BusFenced(BusError):
    """A newer producer took this transactional producer's id (Kafka's zombie fencing):
    nothing it writes in a transaction will ever be visible. Not a passing failure of the
    bus: the work belongs to whoever holds the id now."""


def is_bus_error(exc: BaseException) -> bool:
    """A failure of the bus itself (broker away, timeouts): the work is to be retried,
    never reported as the story's own failure. A caller's own timeout around a bus call
    (``TimeoutError``) counts too, as does a lost connection. A fenced producer does
    not: retrying would fence the member that owns the work now."""
    return isinstance(exc, BusUnavailable | ConnectionError | TimeoutError)


class Producer(abc.ABC):
    """Sends records. ``send`` queues a record and returns at once; await the returned
    future for its position. Batching several sends before awaiting is the fast path."""

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None: ...

    @abc.abstractmethod
    async def send(
        self,
        topic: str,
        key: str,
        value: bytes | None,
        headers: Headers = (),
        timestamp_ms: int | None = None,
    ) -> Awaitable[Position]:
        """Queue a record; its timestamp is ``timestamp_ms`` (the moment the writer decided
        to write it), else the moment it is queued. A ``None`` value is a tombstone (on a
        compacted topic, the key's end); readers see it as an empty value."""

    async def send_and_wait(
        self, topic: str, key: str, value: bytes, headers: Headers = ()
    ) -> Position:
        return await (await self.send(topic, key, value, headers))

    @abc.abstractmethod
    async def flush(self) -> None: ...

    @abc.abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[None]:
        """Records sent inside become visible together on commit, or never on error.
        Only for producers made with a ``transactional_id``."""

    @abc.abstractmethod
    async def send_offsets_to_transaction(
        self, offsets: dict[TopicPartition, int], group_id: str
    ) -> None:
        """Commit a group's consumer offsets as part of the open transaction."""


RebalanceCallback = Callable[[set[TopicPartition]], Awaitable[None]]
# Told a member's new share of a topic's partitions (``Slices``).
ShareCallback = Callable[[frozenset[int]], None]


class GroupConsumer(abc.ABC):
    """A member of a consumer group. Starts from the committed offsets, else the earliest.

    ``membership`` is its lease: until when the group surely still counts it as a member
    (renewed by the backend each time the group confirms it; see ``bus.membership``)."""

    membership: Membership

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None:
        """Leave the group (so the next member does not wait for a session timeout)."""

    @abc.abstractmethod
    async def getmany(self, timeout_ms: int, max_records: int | None = None) -> list[Record]:
        """The next records of the assigned partitions; empty after ``timeout_ms``."""

    @abc.abstractmethod
    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        """Commit the next offset to read for each partition."""

    @abc.abstractmethod
    def assignment(self) -> set[TopicPartition]: ...


class Slices(abc.ABC):
    """This process's share of one topic's partitions among the members of a group, for
    membership only: nothing is read or committed through it. The group shares the
    partitions out again whenever a member joins or leaves (or its session expires), and
    ``on_share`` hears each new share. Gateways use it as their home slices of the stream
    topic (``gateway/relay.py``)."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Join the group; returns once the first share is known."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Leave the group, so the others get this share at once."""


class Bus(abc.ABC):
    name: str

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def ensure_topics(self, specs: Sequence[TopicSpec]) -> None:
        """Create the topics that do not exist yet."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise ``BusUnavailable`` unless the bus answers now (for ``/readyz``)."""

    @abc.abstractmethod
    def producer(
        self,
        *,
        transactional_id: str | None = None,
        low_latency: bool = False,
        client_id: str = "amplify",
        request_timeout_s: float | None = None,
    ) -> Producer:
        """Acks from the in-sync replicas, idempotent. ``low_latency``: lingers a few ms to
        batch (the stream topic).
        ``request_timeout_s``: how long one request may wait for the broker before its
        connection is renewed and it is sent again (default: the bus's own setting)."""

    @abc.abstractmethod
    def group_consumer(
        self,
        topics: Sequence[str],
        group_id: str,
        *,
        isolation: Isolation = "read_committed",
        on_assigned: RebalanceCallback | None = None,
        on_revoked: RebalanceCallback | None = None,
        client_id: str = "amplify",
    ) -> GroupConsumer: ...

    @abc.abstractmethod
    def slices(self, topic: str, group_id: str, on_share: ShareCallback) -> Slices:
        """A membership of ``group_id`` sharing out ``topic``'s partitions (``Slices``)."""

    @abc.abstractmethod
    def read(
        self,
        topic: str,
        start: dict[int, int] | Literal["end"],
        *,
        isolation: Isolation = "read_uncommitted",
    ) -> AbstractAsyncContextManager[AsyncIterator[Record]]:
        """Read outside any group, forever: from the given offset of each listed partition,
        or from the end of every partition (``"end"``: only records written from now on).

        ``async with bus.read(t, {2: 40}) as records: async for r in records: ...``
        """

    @abc.abstractmethod
    async def read_range(
        self, topic: str, partition: int, start: int, end: int, *, isolation: Isolation
    ) -> list[Record]:
        """The records of one partition from ``start`` up to ``end`` (exclusive). With
        ``read_committed`` it waits for transactions open below ``end`` to finish, and
        skips aborted records (their offsets, like commit markers, are gaps)."""

    @abc.abstractmethod
    async def end_offsets(self, topic: str) -> dict[int, int]:
        """The next offset to be written in each partition of the topic."""

    @abc.abstractmethod
    async def begin_offsets(self, topic: str) -> dict[int, int]:
        """The oldest offset still held in each partition (older ones are past retention)."""

    @abc.abstractmethod
    def partition_for(self, topic: str, key: str, partitions: int) -> int:
        """The partition a record with this key goes to (Kafka's murmur2 partitioner)."""
