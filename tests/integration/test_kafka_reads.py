"""The Kafka bus's reads up to an end (``read_range``) through kept readers: one reader
taken again and again, across topics, partitions and isolation levels, reads exactly
what was asked each time, and what is kept is bounded."""

from __future__ import annotations

import asyncio

import pytest

from amplify_stream.bus.base import TopicSpec
from amplify_stream.bus.kafka import KafkaBus
from amplify_stream.bus.kafka_reads import KEPT_READERS
from amplify_stream.bus.kafka_topics import delete_topics
from amplify_stream.config import Settings
from tests.conftest import SettingsFactory


@pytest.mark.kafka
async def test_kept_readers_read_exactly_what_is_asked(
    make_settings: SettingsFactory, kafka_bootstrap: str
) -> None:
    settings: Settings = make_settings(bus="kafka", kafka_bootstrap_servers=kafka_bootstrap)
    bus = KafkaBus(settings)
    await bus.start()
    first, second = settings.topic("reads-a"), settings.topic("reads-b")
    try:
        await bus.ensure_topics([TopicSpec(first, 2), TopicSpec(second, 1)])
        producer = bus.producer(client_id="test-reads")
        await producer.start()
        try:
            written: dict[tuple[str, int], list[int]] = {}
            for topic in (first, second):
                for n in range(12):
                    position = await producer.send_and_wait(topic, f"k{n}", f"{n}".encode())
                    written.setdefault((topic, position.partition), []).append(position.offset)
        finally:
            await producer.stop()
        asks = [
            (topic, partition, offsets[i], offsets[j] + 1, isolation)
            for (topic, partition), offsets in sorted(written.items())
            for i, j in ((0, len(offsets) - 1), (len(offsets) // 2, len(offsets) // 2), (1, 2))
            for isolation in ("read_committed", "read_uncommitted")
        ]
        for topic, partition, start, end, isolation in asks + asks[::-1]:
            records = await bus.read_range(topic, partition, start, end, isolation=isolation)
            assert [(r.topic, r.partition, r.offset) for r in records] == [
                (topic, partition, o) for o in range(start, end)
            ]
        # Many at once: each gets its own reader; no more than the bound is kept after.
        await asyncio.gather(
            *[bus.read_range(t, p, s, e, isolation="read_committed") for t, p, s, e, _ in asks * 2]
        )
        kept = bus._readers._idle["read_committed"] if bus._readers else []
        assert 1 <= len(kept) <= KEPT_READERS
        with pytest.raises(ValueError):
            await bus.read_range(second, 5, 0, 1, isolation="read_committed")
    finally:
        await bus.close()
        await delete_topics(kafka_bootstrap, f"{settings.topic_prefix}.")
