"""Membership-only groups on Kafka (``Slices``): an aiokafka group member over the topic
that never reads. Its assigned partitions are paused the moment they are assigned, so a
poll fetches nothing; it still polls every second, because aiokafka leaves the group of a
consumer that has not polled for ``max_poll_interval_ms``. Offsets are never committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka import TopicPartition as KafkaTopicPartition
from aiokafka.abc import ConsumerRebalanceListener

from amplify_stream.bus.base import ShareCallback, Slices
from amplify_stream.bus.kafka_clients import start_or_close
from amplify_stream.bus.kafka_errors import bus_errors

log = logging.getLogger(__name__)

POLL_TIMEOUT_MS = 1000


class KafkaSlices(Slices):
    def __init__(
        self,
        servers: str,
        topic: str,
        config: dict[str, Any],
        on_share: ShareCallback,
        prepare: Callable[[Sequence[str]], Awaitable[object]],
    ) -> None:
        self._servers = servers
        self._topic = topic
        self._config = config
        self._on_share = on_share
        self._prepare = prepare
        self._share: frozenset[int] = frozenset()
        self._consumer: AIOKafkaConsumer | None = None
        self._polling: asyncio.Task[None] | None = None

    async def start(self) -> None:
        with bus_errors(self._servers):
            await self._prepare([self._topic])
        consumer = AIOKafkaConsumer(bootstrap_servers=self._servers, **self._config)
        # Subscribed before start: start() returns once the first share is in.
        consumer.subscribe([self._topic], listener=_Listener(consumer, self._assigned))
        self._consumer = consumer
        await start_or_close(consumer.start, consumer.stop, self._servers)
        self._polling = asyncio.create_task(self._keep_polling(consumer), name="slices-poll")

    async def stop(self) -> None:
        if self._polling is not None:
            self._polling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._polling
        if self._consumer is not None:
            with bus_errors(self._servers):
                await self._consumer.stop()

    def _assigned(self, share: frozenset[int]) -> None:
        if share != self._share:
            self._share = share
            self._on_share(share)

    async def _keep_polling(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The group's coordinator recovers on its own; the share stays meanwhile.
                log.warning("membership poll of %s failed; polling on", self._topic, exc_info=True)
                await asyncio.sleep(POLL_TIMEOUT_MS / 1000)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """A revocation keeps the old share (minting into it until the new one is known is
    harmless: a story lands where another gateway reads it); an assignment pauses the
    partitions before any fetch and tells the new share."""

    def __init__(self, consumer: AIOKafkaConsumer, assigned: ShareCallback) -> None:
        self._consumer = consumer
        self._assigned = assigned

    async def on_partitions_revoked(self, revoked: Iterable[KafkaTopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Iterable[KafkaTopicPartition]) -> None:
        tps = list(assigned)
        self._consumer.pause(*tps)
        self._assigned(frozenset(tp.partition for tp in tps))
