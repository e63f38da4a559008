"""The Kafka bus: aiokafka against a real broker (the production engine).

The bus owns one admin client (topics, metadata, ping) and one group-less consumer
(offset queries); producers and consumers it makes are started by their owners. Reads
outside any group are ``amplify_stream/bus/kafka_reads.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer
from aiokafka import TopicPartition as KafkaTopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from amplify_stream.bus.base import (
    Bus,
    BusUnavailable,
    GroupConsumer,
    Isolation,
    Producer,
    RebalanceCallback,
    Record,
    ShareCallback,
    Slices,
    TopicSpec,
)
from amplify_stream.bus.kafka_clients import KafkaGroupConsumer, KafkaProducer, start_or_close
from amplify_stream.bus.kafka_errors import bus_errors
from amplify_stream.bus.kafka_reads import Readers, assigned, follow
from amplify_stream.bus.kafka_slices import KafkaSlices
from amplify_stream.bus.kafka_topics import KafkaTopics
from amplify_stream.bus.partitioner import keyed_partitioner, partition_for_key
from amplify_stream.config.groups import BusSettings

PING_TIMEOUT_S = 2.0
# A member that joins or leaves is noticed by the others at their next heartbeat.
HEARTBEAT_INTERVAL_MS = 1000


class KafkaBus(Bus):
    name = "kafka"

    def __init__(self, settings: BusSettings) -> None:
        self._servers = settings.kafka_bootstrap_servers
        self._default_partitions = settings.topic_partitions
        self._linger_ms = settings.stream_linger_ms
        self._session_timeout_ms = settings.kafka_session_timeout_ms
        self._fetch_max_wait_ms = settings.kafka_fetch_max_wait_ms
        self._request_timeout_ms = settings.kafka_request_timeout_ms
        self._transaction_timeout_ms = settings.kafka_transaction_timeout_ms
        self._admin: AIOKafkaAdminClient | None = None
        self._offsets: AIOKafkaConsumer | None = None
        self._topic_admin: KafkaTopics | None = None
        self._readers: Readers | None = None

    async def start(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self._servers, client_id="amplify-admin")
        await start_or_close(admin.start, admin.close, self._servers)
        offsets = AIOKafkaConsumer(
            bootstrap_servers=self._servers, group_id=None, enable_auto_commit=False
        )
        try:
            await start_or_close(offsets.start, offsets.stop, self._servers)
        except BaseException:
            await admin.close()
            raise
        self._admin, self._offsets = admin, offsets
        self._topic_admin = KafkaTopics(admin, self._default_partitions)
        self._readers = Readers(self._topic_admin, self._servers)

    async def close(self) -> None:
        admin, offsets, readers = self._admin, self._offsets, self._readers
        self._admin = self._offsets = self._topic_admin = self._readers = None
        with bus_errors(self._servers):
            try:
                if offsets is not None:
                    await _stop_consumer(offsets)
                if readers is not None:
                    await readers.close()
            finally:
                if admin is not None:
                    await admin.close()

    @property
    def _admin_client(self) -> AIOKafkaAdminClient:
        if self._admin is None:
            raise BusUnavailable("the Kafka bus is not started")
        return self._admin

    @property
    def _topics(self) -> KafkaTopics:
        if self._topic_admin is None:
            raise BusUnavailable("the Kafka bus is not started")
        return self._topic_admin

    async def ping(self) -> None:
        # A timeout is an OSError: it leaves as BusUnavailable too.
        with bus_errors(self._servers):
            async with asyncio.timeout(PING_TIMEOUT_S):
                await self._admin_client.describe_topics([])  # metadata for no topic

    async def ensure_topics(self, specs: Sequence[TopicSpec]) -> None:
        with bus_errors(self._servers):
            await self._topics.ensure(specs)

    def producer(
        self,
        *,
        transactional_id: str | None = None,
        low_latency: bool = False,
        client_id: str = "amplify",
        request_timeout_s: float | None = None,
    ) -> Producer:
        config: dict[str, Any] = {
            "client_id": client_id,
            "request_timeout_ms": (
                self._request_timeout_ms
                if request_timeout_s is None
                else round(request_timeout_s * 1000)
            ),
            "partitioner": keyed_partitioner,
        }
        # Every write waits for min.insync.replicas before it is acknowledged, the stream's
        # too: a reader sees a record only once the in-sync replicas hold it anyway (the
        # high watermark), so acks=1 saved no token latency, and a leader's crash lost
        # what it had acknowledged alone (benchmarks/stream_acks.py measured the two).
        config |= {"acks": "all", "enable_idempotence": True}
        if low_latency:
            if transactional_id is not None:
                raise ValueError("a transactional producer is not low_latency (it lingers)")
            config["linger_ms"] = self._linger_ms
        if transactional_id is not None:
            config["transactional_id"] = transactional_id
            config["transaction_timeout_ms"] = self._transaction_timeout_ms
        return KafkaProducer(self._servers, config)

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
        config: dict[str, Any] = {
            "group_id": group_id,
            "client_id": client_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "isolation_level": isolation,
            "fetch_max_wait_ms": self._fetch_max_wait_ms,
            "heartbeat_interval_ms": min(HEARTBEAT_INTERVAL_MS, self._session_timeout_ms // 3),
            "session_timeout_ms": self._session_timeout_ms,
            "request_timeout_ms": max(self._request_timeout_ms, self._session_timeout_ms + 1000),
        }
        return KafkaGroupConsumer(
            self._servers, topics, config, on_assigned, on_revoked, self._prepare_topics
        )

    def slices(self, topic: str, group_id: str, on_share: ShareCallback) -> Slices:
        config: dict[str, Any] = {
            "group_id": group_id,
            "enable_auto_commit": False,
            # Only if a partition were fetched before it is paused: from the end.
            "auto_offset_reset": "latest",
            "heartbeat_interval_ms": min(HEARTBEAT_INTERVAL_MS, self._session_timeout_ms // 3),
            "session_timeout_ms": self._session_timeout_ms,
            "request_timeout_ms": max(self._request_timeout_ms, self._session_timeout_ms + 1000),
        }
        return KafkaSlices(self._servers, topic, config, on_share, self._prepare_topics)

    async def _prepare_topics(self, names: Sequence[str]) -> None:
        await self._topics.partitions(names)

    @asynccontextmanager
    async def read(
        self,
        topic: str,
        start: dict[int, int] | Literal["end"],
        *,
        isolation: Isolation = "read_uncommitted",
    ) -> AsyncIterator[AsyncIterator[Record]]:
        async with self._assigned(topic, start, isolation) as consumer:
            records = follow(consumer, self._servers)
            try:
                yield records
            finally:
                await records.aclose()

    async def read_range(
        self, topic: str, partition: int, start: int, end: int, *, isolation: Isolation
    ) -> list[Record]:
        if start >= end:
            return []
        if self._readers is None:
            raise BusUnavailable("the Kafka bus is not started")
        return await self._readers.read(topic, partition, start, end, isolation)

    def _assigned(
        self, topic: str, start: dict[int, int] | Literal["end"], isolation: Isolation
    ) -> AbstractAsyncContextManager[AIOKafkaConsumer]:
        topics, wait_ms = self._topics, self._fetch_max_wait_ms
        return assigned(topics, self._servers, wait_ms, topic, start, isolation)

    async def end_offsets(self, topic: str) -> dict[int, int]:
        with bus_errors(self._servers):
            tps = await self._all_partitions(topic)
            offsets = await self._offsets_consumer.end_offsets(tps)
        return {tp.partition: offset for tp, offset in offsets.items()}

    async def begin_offsets(self, topic: str) -> dict[int, int]:
        with bus_errors(self._servers):
            tps = await self._all_partitions(topic)
            offsets = await self._offsets_consumer.beginning_offsets(tps)
        return {tp.partition: offset for tp, offset in offsets.items()}

    @property
    def _offsets_consumer(self) -> AIOKafkaConsumer:
        if self._offsets is None:
            raise BusUnavailable("the Kafka bus is not started")
        return self._offsets

    async def _all_partitions(self, topic: str) -> list[KafkaTopicPartition]:
        partitions = (await self._topics.partitions([topic]))[topic]
        return [KafkaTopicPartition(topic, p) for p in range(partitions)]

    def partition_for(self, topic: str, key: str, partitions: int) -> int:
        # aiokafka's DefaultPartitioner (the producers' default) uses the same murmur2.
        return partition_for_key(key, partitions)


async def _stop_consumer(consumer: AIOKafkaConsumer) -> None:
    """``consumer.stop()``. Stopped right after it started, aiokafka 0.14's group-less
    coordinator awaits a task of its own it has just cancelled before that task ran,
    and its CancelledError comes out here: that is not a cancellation of ours."""
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
