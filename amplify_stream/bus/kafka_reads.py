"""The Kafka bus's reads outside any consumer group: a consumer of its own, assigned the
partitions asked for and positioned at a start, to follow (``Bus.read``) or to read up
to an end (``Bus.read_range``). Its setup and stop raise the port's errors."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

from aiokafka import AIOKafkaConsumer
from aiokafka import TopicPartition as KafkaTopicPartition

from amplify_stream.bus.base import Isolation, Record
from amplify_stream.bus.kafka_clients import start_or_close, to_record
from amplify_stream.bus.kafka_errors import bus_errors
from amplify_stream.bus.kafka_topics import KafkaTopics


@asynccontextmanager
async def assigned(
    topics: KafkaTopics,
    servers: str,
    fetch_max_wait_ms: int,
    topic: str,
    start: dict[int, int] | Literal["end"],
    isolation: Isolation,
) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer outside any group, positioned at ``start``. Its setup and stop raise
    the port's errors; the caller's own pass as they are."""
    with bus_errors(servers):
        partitions = (await topics.partitions([topic]))[topic]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=servers,
        group_id=None,
        enable_auto_commit=False,
        # Only for an offset outside the log (past retention, or not written yet).
        auto_offset_reset="earliest",
        isolation_level=isolation,
        fetch_max_wait_ms=fetch_max_wait_ms,
    )
    try:
        with bus_errors(servers):
            await start_or_close(consumer.start, consumer.stop, servers)
            if start == "end":
                tps = [KafkaTopicPartition(topic, p) for p in range(partitions)]
                consumer.assign(tps)
                await consumer.seek_to_end(*tps)
                # Resolve the end now: a record written after we yield must not be missed.
                for tp in tps:
                    await consumer.position(tp)
            else:
                if unknown := [p for p in start if not 0 <= p < partitions]:
                    raise ValueError(f"topic {topic!r} has no partitions {unknown}")
                consumer.assign([KafkaTopicPartition(topic, p) for p in start])
                for p, offset in start.items():
                    consumer.seek(KafkaTopicPartition(topic, p), offset)
        yield consumer
    finally:
        with bus_errors(servers):
            await consumer.stop()


async def follow(consumer: AIOKafkaConsumer, servers: str) -> AsyncGenerator[Record, None]:
    """Every record from the consumer's position on, as it comes."""
    while True:
        with bus_errors(servers):
            batches = await consumer.getmany(timeout_ms=1000)
        for messages in batches.values():
            for message in messages:
                yield to_record(message)


async def read_until(
    consumer: AIOKafkaConsumer, tp: KafkaTopicPartition, end: int, servers: str
) -> list[Record]:
    """The records of ``tp`` from the consumer's position to ``end`` (not included)."""
    found: list[Record] = []
    # The position, not the last record, tells when we are done: commit markers and
    # aborted records take offsets but are never returned.
    with bus_errors(servers):
        while (position := await consumer.position(tp)) < end:
            # At most what is left: aiokafka decodes a fetched buffer as far as it is
            # asked to, and a fetch holds up to a megabyte past the record wanted (an
            # owner reading one snapshot back decoded a thousand: a fifth of its CPU).
            batches = await consumer.getmany(tp, timeout_ms=200, max_records=end - position)
            for message in batches.get(tp, []):
                if message.offset < end:
                    found.append(to_record(message))
    return found


# Readers kept between reads up to an end (``Bus.read_range``), per isolation level: a
# new consumer costs a connection and a metadata round trip (about 5 ms idle, 20 under
# load here), a kept one a seek (a document owner reads one snapshot back per evicted
# document it is asked for).
KEPT_READERS = 4
# How long a kept reader's fetch may wait at the broker for more data: aiokafka fetches
# on past what was asked, and a fetch still in flight when the reader is taken again
# holds its first fetch back that long.
KEPT_READER_FETCH_WAIT_MS = 10


class Readers:
    """Group-less consumers for ``read_range``, kept (paused) between reads."""

    def __init__(self, topics: KafkaTopics, servers: str) -> None:
        self._topics = topics
        self._servers = servers
        self._idle: dict[Isolation, list[AIOKafkaConsumer]] = {
            "read_committed": [],
            "read_uncommitted": [],
        }
        self._closed = False

    async def read(
        self, topic: str, partition: int, start: int, end: int, isolation: Isolation
    ) -> list[Record]:
        """The records of ``topic``'s ``partition`` from ``start`` to ``end``."""
        with bus_errors(self._servers):
            partitions = (await self._topics.partitions([topic]))[topic]
        if not 0 <= partition < partitions:
            raise ValueError(f"topic {topic!r} has no partition {partition}")
        idle = self._idle[isolation]
        # The one kept longest: a fetch it sent on past its last read is over by now.
        consumer = idle.pop(0) if idle else await self._new(isolation)
        tp = KafkaTopicPartition(topic, partition)
        kept = False
        try:
            consumer.assign([tp])  # replaces the last read's (paused) partition
            consumer.seek(tp, start)
            found = await read_until(consumer, tp, end, self._servers)
            kept = not self._closed and len(idle) < KEPT_READERS
            return found
        finally:
            if kept:
                consumer.pause(tp)  # no fetching while idle
                idle.append(consumer)
            else:
                with bus_errors(self._servers):
                    await consumer.stop()

    async def _new(self, isolation: Isolation) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._servers,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level=isolation,
            fetch_max_wait_ms=KEPT_READER_FETCH_WAIT_MS,
        )
        with bus_errors(self._servers):
            await start_or_close(consumer.start, consumer.stop, self._servers)
        return consumer

    async def close(self) -> None:
        self._closed = True
        idle = [c for kept in self._idle.values() for c in kept]
        for kept in self._idle.values():
            kept.clear()
        with bus_errors(self._servers):
            for consumer in idle:
                await consumer.stop()
