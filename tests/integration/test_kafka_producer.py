"""A Kafka producer whose aiokafka sender ended (as on an idempotent producer's
``OutOfOrderSequenceNumber`` after a broker restart) is replaced at its next send, not
left queueing records that never go out; so is an idempotent one a record of which
failed (its sequence has a gap the broker refuses for ever after); a transactional one
is left to its owner."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from amplify_stream.bus import Bus
from amplify_stream.bus.base import BusError, Position
from amplify_stream.bus.kafka_clients import KafkaProducer

pytestmark = [
    # The parametrize's id carries no marker: said here, so `make check` deselects them.
    pytest.mark.kafka,
    pytest.mark.parametrize("bus_kind", ["kafka"], indirect=True),
    pytest.mark.timeout(60),
]


async def values_from(bus: Bus, topic: str, first: Position, n: int) -> list[bytes | None]:
    """The values of ``n`` records of ``first``'s partition, from ``first`` on."""
    got: list[bytes | None] = []
    async with asyncio.timeout(20), bus.read(topic, {first.partition: first.offset}) as records:
        async for record in records:
            got.append(record.value)
            if len(got) == n:
                return got
    return got


async def end_sender(producer: KafkaProducer) -> Any:
    """What the sender's fatal error does to it, here by cancelling its task."""
    client = producer._producer
    assert client is not None
    task = client._sender.sender_task
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.done()
    return client


async def test_a_producer_whose_sender_ended_is_replaced_and_delivers(
    bus: Bus, unique_topic: Callable[..., str]
) -> None:
    topic = unique_topic()
    producer = bus.producer()
    assert isinstance(producer, KafkaProducer)
    await producer.start()
    try:
        first = await producer.send_and_wait(topic, "k", b"before")
        ended = await end_sender(producer)
        second = await asyncio.wait_for(producer.send_and_wait(topic, "k", b"after"), 20)
        assert producer._producer is not ended
    finally:
        await producer.stop()
    assert await values_from(bus, topic, first, 2) == [b"before", b"after"]
    assert second.offset > first.offset


async def test_a_transactional_producer_is_not_replaced(
    bus: Bus, unique_topic: Callable[..., str]
) -> None:
    topic = unique_topic()
    producer = bus.producer(transactional_id=f"{topic}-tx")
    assert isinstance(producer, KafkaProducer)
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send_and_wait(topic, "k", b"one")
        ended = await end_sender(producer)
        # Outside a transaction aiokafka refuses the send; what matters is that the
        # producer was not swapped for a new one (which would also start a new epoch).
        with pytest.raises(Exception):  # noqa: B017
            await producer.send(topic, "k", b"two")
        assert producer._producer is ended
    finally:
        await producer.stop()


async def test_an_idempotent_producer_a_record_of_which_failed_is_replaced(
    bus: Bus, unique_topic: Callable[..., str], kafka_bootstrap: str
) -> None:
    """A record the broker refuses (here too large for its topic) leaves a gap in the
    producer's sequence for its partition: without a new producer every later record of
    that partition is refused as out of order."""
    topic = unique_topic()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        small = NewTopic(topic, 1, 1, topic_configs={"max.message.bytes": "2000"})
        await admin.create_topics([small])
    finally:
        await admin.close()
    producer = bus.producer()
    assert isinstance(producer, KafkaProducer)
    await producer.start()
    try:
        first = await asyncio.wait_for(producer.send_and_wait(topic, "k", b"small"), 20)
        failed = producer._producer
        with pytest.raises(BusError):
            await asyncio.wait_for(producer.send_and_wait(topic, "k", b"x" * 5000), 20)
        after = await asyncio.wait_for(producer.send_and_wait(topic, "k", b"after"), 20)
        assert producer._producer is not failed
    finally:
        await producer.stop()
    assert await values_from(bus, topic, first, 2) == [b"small", b"after"]
    assert after.offset == first.offset + 1
