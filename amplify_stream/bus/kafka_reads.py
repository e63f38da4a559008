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
        while await consumer.position(tp) < end:
            batches = await consumer.getmany(tp, timeout_ms=200)
            for message in batches.get(tp, []):
                if message.offset < end:
                    found.append(to_record(message))
    return found
