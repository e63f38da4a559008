"""The producer and group consumer of the Kafka bus, as thin wrappers over aiokafka.

aiokafka objects need a running loop when constructed, so each wrapper keeps its
configuration and builds the client in ``start``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka import TopicPartition as KafkaTopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError

from amplify_stream.bus.base import (
    BusUnavailable,
    GroupConsumer,
    Headers,
    Position,
    Producer,
    RebalanceCallback,
    Record,
    TopicPartition,
)
from amplify_stream.bus.kafka_errors import bus_errors, to_bus_error
from amplify_stream.bus.kafka_membership import observe_heartbeats
from amplify_stream.bus.membership import Membership, clock

log = logging.getLogger(__name__)


async def start_or_close(
    start: Callable[[], Awaitable[object]], close: Callable[[], Awaitable[object]], servers: str
) -> None:
    """Start an aiokafka client; on failure close it (it may hold sockets already)."""
    try:
        await start()
    except BaseException as exc:
        await close()
        if isinstance(exc, KafkaError | OSError):
            raise BusUnavailable(f"Kafka at {servers} cannot be reached: {exc}") from exc
        raise


def to_record(message: ConsumerRecord[bytes, bytes]) -> Record:
    key: bytes | None = message.key
    value: bytes | None = message.value
    return Record(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=key.decode() if key is not None else "",
        value=value if value is not None else b"",
        headers=tuple((name, data or b"") for name, data in message.headers),
        timestamp_ms=message.timestamp,
    )


def from_kafka(tps: Iterable[KafkaTopicPartition]) -> set[TopicPartition]:
    return {TopicPartition(tp.topic, tp.partition) for tp in tps}


def to_kafka(offsets: dict[TopicPartition, int]) -> dict[KafkaTopicPartition, int]:
    return {KafkaTopicPartition(tp.topic, tp.partition): offset for tp, offset in offsets.items()}


class KafkaProducer(Producer):
    """An aiokafka producer behind the port.

    An idempotent producer that is not transactional is replaced by a new one (a new
    producer id, its sequences from 0) at its next send when its sequence may have a gap,
    which aiokafka never mends (it has no KIP-360 epoch bump): when a record of it
    failed. aiokafka numbered the record's batch when it took it to send or to expire (a
    partition without a leader for ``request_timeout_ms``, as while a broker restarts),
    so the broker answers every later batch of that partition ``OutOfOrderSequenceNumber``
    and the producer never delivers to it again. Any producer that is not transactional
    is also replaced when its sender task ended (on some of those answers): every send
    would wait for ever. A transactional producer is not replaced: its failures (fenced,
    above all) are the worker's to handle, and a new one would be a new epoch. The sender
    task is private to aiokafka (``_sender.sender_task``); without it only failed records
    replace a producer.
    """

    def __init__(self, servers: str, config: dict[str, Any]) -> None:
        self._servers = servers
        self._config = config
        self._producer: AIOKafkaProducer | None = None
        self._replacing = asyncio.Lock()
        self._transactional = "transactional_id" in config
        self._idempotent = bool(config.get("enable_idempotence"))
        # Started and not stopped: a producer that went is made again at the next send.
        self._running = False
        # A record of the current producer failed: its sequence may have a gap.
        self._failed = False
        # Replaced producers, stopping (their pending records fail or go out).
        self._retiring: set[asyncio.Task[None]] = set()

    @property
    def _client(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise BusUnavailable("the producer is not started (or is restarting)")
        return self._producer

    async def start(self) -> None:
        await self._open()
        self._running = True

    async def _open(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self._servers, **self._config)
        await start_or_close(producer.start, producer.stop, self._servers)
        self._producer = producer

    async def stop(self) -> None:
        self._running = False
        if self._retiring:
            await asyncio.wait(self._retiring)
        if self._producer is not None:
            producer, self._producer = self._producer, None
            if self._transactional:
                await self._close_within(producer)
                return
            with bus_errors(self._servers):
                await producer.stop()

    async def _close_within(self, producer: AIOKafkaProducer) -> None:
        """Stop a transactional producer within its request timeout, else close it: its
        stop flushes what it holds, and a transactional batch never expires while its
        partition has a leader, so a stop could wait out a whole outage. Nothing
        committed is lost: what it held was in a transaction it never committed (or one
        whose commit the coordinator has, and ends alone)."""
        timeout_s = self._config["request_timeout_ms"] / 1000
        try:
            async with asyncio.timeout(timeout_s):
                await producer.stop()
        except TimeoutError:
            log.warning("a transactional producer did not stop in %.0f s: closed", timeout_s)
            task = producer._sender.sender_task  # noqa: SLF001 (see _sender_ended)
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            with contextlib.suppress(Exception):
                await producer.client.close()
        except (KafkaError, OSError) as exc:
            raise to_bus_error(exc, self._servers) from exc

    async def send(
        self,
        topic: str,
        key: str,
        value: bytes | None,
        headers: Headers = (),
        timestamp_ms: int | None = None,
    ) -> Awaitable[Position]:
        # Queues the record; the broker's answer arrives on the returned future.
        if self._needs_replacing():
            await self._replace()
        client = self._client
        with bus_errors(self._servers):
            sent = await client.send(
                topic,
                value=value,
                key=key.encode(),
                headers=list(headers),
                timestamp_ms=timestamp_ms,
            )
        return _position_future(sent, self._servers, lambda: self._record_failed(client))

    async def flush(self) -> None:
        with bus_errors(self._servers):
            await self._client.flush()

    def _record_failed(self, client: AIOKafkaProducer) -> None:
        if client is self._producer:
            self._failed = True

    def _needs_replacing(self) -> bool:
        if not self._running or self._transactional:
            return False
        producer = self._producer
        return (
            producer is None  # a replacement that could not start: tried again
            or _sender_ended(producer)
            or (self._idempotent and self._failed)
        )

    async def _replace(self) -> None:
        async with self._replacing:
            if not self._needs_replacing():
                return  # another send replaced it meanwhile
            old, self._producer = self._producer, None
            if old is not None:
                if _sender_ended(old):
                    task = old._sender.sender_task  # noqa: SLF001 (see _sender_ended)
                    why = repr(task.exception()) if not task.cancelled() else "cancelled"
                    log.warning("the Kafka producer's sender ended (%s): a new producer", why)
                else:
                    log.warning("a record of the Kafka producer failed: a new producer")
                self._failed = False
                # Stopped aside: what it still holds goes out or fails meanwhile.
                retiring = asyncio.create_task(_stop_quietly(old))
                self._retiring.add(retiring)
                retiring.add_done_callback(self._retiring.discard)
            await self._open()  # raises BusUnavailable: the next send tries again

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        # Translated: what begin, commit and abort raise. The body's own errors pass as
        # they are (the sends in it raise the port's errors already).
        failed: BaseException | None = None
        try:
            async with self._client.transaction():
                try:
                    yield
                except BaseException as exc:
                    failed = exc
                    raise
        except (KafkaError, OSError) as exc:
            if exc is failed:
                raise
            raise to_bus_error(exc, self._servers) from exc

    async def send_offsets_to_transaction(
        self, offsets: dict[TopicPartition, int], group_id: str
    ) -> None:
        with bus_errors(self._servers):
            await self._client.send_offsets_to_transaction(to_kafka(offsets), group_id)


def _sender_ended(producer: AIOKafkaProducer) -> bool:
    task = getattr(getattr(producer, "_sender", None), "sender_task", None)
    return isinstance(task, asyncio.Task) and task.done()


async def _stop_quietly(producer: AIOKafkaProducer) -> None:
    with contextlib.suppress(Exception):
        await producer.stop()


def _position_future(
    sent: asyncio.Future[Any], servers: str, failed: Callable[[], None]
) -> asyncio.Future[Position]:
    """Chain aiokafka's ``RecordMetadata`` future into a ``Position`` future (no task);
    the broker's refusal arrives on it as the port's error, and ``failed`` is called."""
    position: asyncio.Future[Position] = asyncio.get_running_loop().create_future()

    def resolve(done: asyncio.Future[Any]) -> None:
        exc = None if done.cancelled() else done.exception()  # retrieved, whoever waits
        if exc is not None:
            failed()
        if position.done():
            return
        if done.cancelled():
            position.cancel()
        elif exc is not None:
            position.set_exception(to_bus_error(exc, servers))
        else:
            meta = done.result()
            position.set_result(Position(meta.topic, meta.partition, meta.offset))

    sent.add_done_callback(resolve)
    return position


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """The caller's callbacks, and the lease: aiokafka revokes before every JoinGroup and
    assigns after its SyncGroup, so an assignment renews the membership from the moment
    the revocation ended (see ``kafka_membership``)."""

    def __init__(
        self,
        on_assigned: RebalanceCallback | None,
        on_revoked: RebalanceCallback | None,
        membership: Membership,
    ):
        self._on_assigned = on_assigned
        self._on_revoked = on_revoked
        self._membership = membership
        self._joining_since = clock()

    async def on_partitions_revoked(self, revoked: Iterable[KafkaTopicPartition]) -> None:
        try:
            if self._on_revoked is not None:
                await self._on_revoked(from_kafka(revoked))
        finally:
            self._joining_since = clock()

    async def on_partitions_assigned(self, assigned: Iterable[KafkaTopicPartition]) -> None:
        self._membership.renew(self._joining_since)
        if self._on_assigned is not None:
            await self._on_assigned(from_kafka(assigned))


class KafkaGroupConsumer(GroupConsumer):
    def __init__(
        self,
        servers: str,
        topics: Sequence[str],
        config: dict[str, Any],
        on_assigned: RebalanceCallback | None,
        on_revoked: RebalanceCallback | None,
        prepare: Callable[[Sequence[str]], Awaitable[object]],
    ) -> None:
        self._servers = servers
        self._topics = list(topics)
        self._config = config
        self.membership = Membership(config["session_timeout_ms"] / 1000)
        self._listener = _Listener(on_assigned, on_revoked, self.membership)
        self._prepare = prepare
        self._consumer: AIOKafkaConsumer | None = None

    @property
    def _client(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("the consumer is not started")
        return self._consumer

    async def start(self) -> None:
        # Missing topics are created first (as the memory bus does), so joining the group
        # never waits on metadata for a topic that does not exist yet.
        with bus_errors(self._servers):
            await self._prepare(self._topics)
        consumer = AIOKafkaConsumer(bootstrap_servers=self._servers, **self._config)
        # Subscribed before start: start() then returns once the first assignment is in.
        consumer.subscribe(self._topics, listener=self._listener)
        self._consumer = consumer
        await start_or_close(consumer.start, consumer.stop, self._servers)
        observe_heartbeats(consumer, self.membership)

    async def stop(self) -> None:
        self.membership.end()
        if self._consumer is not None:
            with bus_errors(self._servers):
                await self._consumer.stop()

    async def getmany(self, timeout_ms: int, max_records: int | None = None) -> list[Record]:
        with bus_errors(self._servers):
            batches = await self._client.getmany(timeout_ms=timeout_ms, max_records=max_records)
        return [to_record(message) for messages in batches.values() for message in messages]

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        with bus_errors(self._servers):
            await self._client.commit(to_kafka(offsets))

    def assignment(self) -> set[TopicPartition]:
        if self._consumer is None:
            return set()
        return from_kafka(self._consumer.assignment())
