"""The bus port raises its own errors: the Kafka backend turns aiokafka's into them at
its boundary (shown here on fake aiokafka clients, no broker needed), and telling a bus
error needs no Kafka client."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiokafka.errors import (
    CommitFailedError,
    KafkaConnectionError,
    KafkaTimeoutError,
    NotEnoughReplicasError,
    ProducerFenced,
)

from amplify_stream.bus import BusError, BusFenced, BusUnavailable, TopicPartition, is_bus_error
from amplify_stream.bus.kafka_clients import KafkaGroupConsumer, KafkaProducer

SERVERS = "broker:9092"
TP = TopicPartition("t", 0)


@pytest.mark.parametrize(
    ("exc", "bus_error"),
    [
        (BusUnavailable("down"), True),
        (TimeoutError(), True),  # a caller's own deadline on a bus call
        (ConnectionResetError(), True),
        (BusFenced("fenced"), False),  # retrying would fence the owner of the work
        (ValueError("bad"), False),
    ],
)
def test_what_counts_as_a_bus_error(exc: BaseException, bus_error: bool) -> None:
    assert is_bus_error(exc) is bus_error


def test_telling_a_bus_error_loads_no_kafka_client() -> None:
    """``is_bus_error`` is a check of the port's types: aiokafka is never imported for it."""
    code = (
        "import sys\n"
        "from amplify_stream.bus import BusFenced, BusUnavailable, is_bus_error\n"
        "assert is_bus_error(BusUnavailable('down')) and not is_bus_error(BusFenced('f'))\n"
        "assert 'aiokafka' not in sys.modules, 'aiokafka was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# ---------------------------------------------------------------- fake aiokafka clients


class FakeAioProducer:
    """Fails the way it is told: at ``send``, on the send's future, or at commit."""

    def __init__(
        self,
        *,
        on_send: BaseException | None = None,
        on_delivery: BaseException | None = None,
        on_commit: BaseException | None = None,
    ) -> None:
        self.on_send, self.on_delivery, self.on_commit = on_send, on_delivery, on_commit
        self.aborted = False

    async def send(self, *_: Any, **__: Any) -> asyncio.Future[Any]:
        if self.on_send is not None:
            raise self.on_send
        sent: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        assert self.on_delivery is not None
        sent.set_exception(self.on_delivery)
        return sent

    async def flush(self) -> None:
        raise KafkaTimeoutError()

    async def send_offsets_to_transaction(self, *_: Any) -> None:
        raise KafkaConnectionError("no coordinator")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        # As aiokafka's TransactionContext: abort on the body's error, else commit.
        try:
            yield
        except BaseException:
            self.aborted = True
            raise
        if self.on_commit is not None:
            raise self.on_commit


def producer_over(fake: FakeAioProducer) -> KafkaProducer:
    producer = KafkaProducer(SERVERS, {})
    producer._producer = fake  # type: ignore[assignment]
    return producer


def assert_translated(raised: pytest.ExceptionInfo[BusError], original: type[BaseException]):
    assert isinstance(raised.value.__cause__, original)  # the broker's error stays visible


# ---------------------------------------------------------------- the producer


@pytest.mark.parametrize(
    ("failure", "port_error"),
    [
        (KafkaTimeoutError(), BusUnavailable),  # no metadata for the topic in time
        (KafkaConnectionError("refused"), BusUnavailable),
        (ProducerFenced(), BusFenced),
    ],
)
async def test_send_raises_the_ports_errors(
    failure: BaseException, port_error: type[BusError]
) -> None:
    with pytest.raises(port_error) as raised:
        await producer_over(FakeAioProducer(on_send=failure)).send("t", "k", b"v")
    assert_translated(raised, type(failure))


@pytest.mark.parametrize(
    ("failure", "port_error"),
    [(NotEnoughReplicasError(), BusUnavailable), (ProducerFenced(), BusFenced)],
)
async def test_a_refused_record_fails_its_future_with_the_ports_error(
    failure: BaseException, port_error: type[BusError]
) -> None:
    sent = await producer_over(FakeAioProducer(on_delivery=failure)).send("t", "k", b"v")
    with pytest.raises(port_error) as raised:
        await sent
    assert_translated(raised, type(failure))


@pytest.mark.parametrize(
    ("failure", "port_error"),
    [(KafkaConnectionError("coordinator gone"), BusUnavailable), (ProducerFenced(), BusFenced)],
)
async def test_a_failed_commit_raises_the_ports_error(
    failure: BaseException, port_error: type[BusError]
) -> None:
    producer = producer_over(FakeAioProducer(on_commit=failure))
    with pytest.raises(port_error) as raised:
        async with producer.transaction():
            pass
    assert_translated(raised, type(failure))


@pytest.mark.parametrize("own", [TimeoutError(), ConnectionResetError(), RuntimeError("abort")])
async def test_the_transaction_bodys_own_errors_pass_unchanged(own: BaseException) -> None:
    fake = FakeAioProducer()
    with pytest.raises(type(own)) as raised:
        async with producer_over(fake).transaction():
            raise own
    assert raised.value is own
    assert fake.aborted


async def test_flush_and_offsets_raise_the_ports_errors() -> None:
    producer = producer_over(FakeAioProducer())
    with pytest.raises(BusUnavailable):
        await producer.flush()
    with pytest.raises(BusUnavailable):
        await producer.send_offsets_to_transaction({TP: 1}, "g")


async def test_an_unstarted_producer_is_unavailable() -> None:
    with pytest.raises(BusUnavailable):
        await KafkaProducer(SERVERS, {}).send("t", "k", b"v")


# ---------------------------------------------------------------- the group consumer


class FakeAioConsumer:
    async def getmany(self, **_: Any) -> dict[Any, Any]:
        raise KafkaConnectionError("fetch failed")

    async def commit(self, _: Any) -> None:
        raise CommitFailedError("rebalanced meanwhile")


async def test_group_consumer_raises_the_ports_errors() -> None:
    async def prepare(_: Any) -> None: ...

    consumer = KafkaGroupConsumer(
        SERVERS, ["t"], {"session_timeout_ms": 10_000}, None, None, prepare
    )
    consumer._consumer = FakeAioConsumer()  # type: ignore[assignment]
    with pytest.raises(BusUnavailable):
        await consumer.getmany(timeout_ms=10)
    with pytest.raises(BusUnavailable) as raised:
        await consumer.commit({TP: 1})
    assert_translated(raised, CommitFailedError)
