"""Gateways' relays share the stream topic (home slices) and read only what they serve:
their home slice, and a partition elsewhere only while a socket watches a key of it (and
a linger after). On both buses, relays side by side on one bus as gateways are."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from amplify_stream.bus.base import Bus, Record, TopicSpec
from amplify_stream.bus.partitioner import partition_for_key
from amplify_stream.config import Settings
from amplify_stream.gateway.relay import RelayHub, Subscription
from tests.support import wait_until

PARTITIONS = 4
LINGER_S = 0.3


@contextlib.asynccontextmanager
async def relays(
    bus: Bus, topic: str, group: str, count: int, linger_s: float = LINGER_S
) -> AsyncIterator[list[RelayHub]]:
    hubs: list[RelayHub] = []
    try:
        for _ in range(count):
            hub = RelayHub(bus, topic, group_id=group, linger_s=linger_s)
            await hub.start()
            hubs.append(hub)
        yield hubs
    finally:
        for hub in hubs:
            await hub.stop()


def settled(hubs: list[RelayHub]) -> bool:
    """Every partition home to exactly one relay, each reading its home alone."""
    homes = [hub.home for hub in hubs]
    return (
        sum(len(home) for home in homes) == PARTITIONS
        and frozenset().union(*homes) == frozenset(range(PARTITIONS))
        and all(hub.reading == hub.home for hub in hubs)
    )


async def drain(sub: Subscription, count: int) -> list[Record]:
    async with asyncio.timeout(15):
        return [await sub.queue.get() for _ in range(count)]


async def test_relays_read_their_home_and_what_they_watch(bus: Bus, settings: Settings) -> None:
    topic = settings.topic("stream")
    await bus.ensure_topics([TopicSpec(topic, PARTITIONS)])
    producer = bus.producer(low_latency=True)
    await producer.start()
    async with relays(bus, topic, f"{settings.topic_prefix}.gateways", 2) as (a, b):
        await wait_until(lambda: settled([a, b]), "the home slices to settle", timeout=30)
        assert a.home and b.home
        # Ids minted by a gateway fall in its own slice.
        keys = [a.mint() for _ in range(20)]
        assert {partition_for_key(k, PARTITIONS) for k in keys} <= a.home
        watched, elsewhere = keys[0], b.mint()
        home_of_watched = partition_for_key(watched, PARTITIONS)

        # b watches a key of a's slice: it reads that partition too, live from here on.
        before = (a.records_read, b.records_read)
        sub = await b.subscribe(watched)
        assert sub.live and b.reading == b.home | {home_of_watched}
        for n in range(3):
            await producer.send_and_wait(topic, watched, f"w{n}".encode())
            await producer.send_and_wait(topic, elsewhere, f"e{n}".encode())
            await producer.send_and_wait(topic, keys[1], f"o{n}".encode())
        got = await drain(sub, 3)
        assert [r.value for r in got] == [b"w0", b"w1", b"w2"]
        assert [r.offset for r in got] == sorted(r.offset for r in got)
        # a read its home's 6 records (watched's and keys[1]'s); b its own 3 and the
        # watched partition's records.
        same = home_of_watched == partition_for_key(keys[1], PARTITIONS)
        wanted = [6, 3 + (6 if same else 3)]

        def read() -> list[int]:
            return [a.records_read - before[0], b.records_read - before[1]]

        await wait_until(
            lambda: all(n >= w for n, w in zip(read(), wanted, strict=True)),
            "each relay to read its partitions' records",
        )
        assert read() == wanted

        # The socket leaves: after the linger b reads its home alone again.
        b.unsubscribe(sub)
        await wait_until(lambda: b.reading == b.home, "the linger to end", timeout=10)

        # A relay leaving: its slice goes to the one left, which mints into all of it.
    async with relays(bus, topic, f"{settings.topic_prefix}.gateways", 1) as (c,):
        await wait_until(lambda: settled([c]), "the one relay left to hold every partition", 30)
    await producer.stop()


def slow_end_offsets(bus: Bus, monkeypatch: pytest.MonkeyPatch, delay_s: float) -> None:
    """The bus answers where partitions end ``delay_s`` late, as a busy broker does (the
    memory bus answers at once): a reader adding a partition takes that long to start
    over, and records are written meanwhile."""
    answer = bus.end_offsets

    async def late(topic: str) -> dict[int, int]:
        await asyncio.sleep(delay_s)
        return await answer(topic)

    monkeypatch.setattr(bus, "end_offsets", late)


async def test_a_watcher_misses_nothing_while_the_reader_starts_over(
    bus: Bus, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records of a watched key keep coming, in order and once each, while partitions of
    other keys join and leave the reader (each a start over from its positions, records
    written while it starts over)."""
    topic = settings.topic("stream")
    await bus.ensure_topics([TopicSpec(topic, PARTITIONS)])
    producer = bus.producer(low_latency=True)
    await producer.start()
    # No linger: a partition is dropped as soon as its last watcher leaves.
    async with relays(bus, topic, f"{settings.topic_prefix}.gateways", 2, 0.0) as (a, b):
        await wait_until(lambda: settled([a, b]), "the home slices to settle", timeout=30)
        key = b.mint()
        sub = await b.subscribe(key)
        starts, sent = b.reader_starts, 60
        slow_end_offsets(bus, monkeypatch, 0.02)

        async def churn() -> None:
            # b watches a key of a's slice and leaves it, over and over: its reader
            # starts over twice each time.
            for _ in range(10):
                other = await b.subscribe(a.mint())
                await asyncio.sleep(0.01)
                b.unsubscribe(other)
                await wait_until(lambda: b.reading == b.home, "the partition dropped")

        async def write() -> None:
            for n in range(sent):
                await producer.send_and_wait(topic, key, str(n).encode())
                await asyncio.sleep(0.005)

        await asyncio.gather(churn(), write())
        got = await drain(sub, sent)
        assert [int(r.value) for r in got] == list(range(sent))
        assert sub.queue.empty() and not sub.overflowed
        # The fault was hit: the reader started over while the records came.
        assert b.reader_starts - starts >= 10
    await producer.stop()


async def test_a_subscription_given_up_while_it_waits_leaves_nothing_behind(
    bus: Bus, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A socket that goes while its subscription waits for the reader to reach the key's
    partition: the partition goes once its linger ends, as if never watched."""
    topic = settings.topic("stream")
    await bus.ensure_topics([TopicSpec(topic, PARTITIONS)])
    async with relays(bus, topic, f"{settings.topic_prefix}.gateways", 2, 0.0) as (a, b):
        await wait_until(lambda: settled([a, b]), "the home slices to settle", timeout=30)
        slow_end_offsets(bus, monkeypatch, 0.5)
        waiting = asyncio.create_task(b.subscribe(a.mint()))
        await wait_until(lambda: b.reading != b.home, "the reader starting over", every=0.001)
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        await wait_until(lambda: b.reading == b.home, "the partition given back", timeout=10)


async def test_a_subscription_the_reader_was_late_for_catches_up(
    bus: Bus, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader not positioned on a key's partition in time: the subscription comes
    back overflowed, and following the key from the log still yields every record."""
    topic = settings.topic("stream")
    await bus.ensure_topics([TopicSpec(topic, PARTITIONS)])
    producer = bus.producer(low_latency=True)
    await producer.start()
    group = f"{settings.topic_prefix}.gateways"
    async with relays(bus, topic, group, 1) as (a,):
        b = RelayHub(bus, topic, group_id=group, linger_s=0.0, position_timeout_s=0.05)
        await b.start()
        try:
            await wait_until(lambda: settled([a, b]), "the home slices to settle", timeout=30)
            key = a.mint()
            partition = partition_for_key(key, PARTITIONS)
            first = await producer.send_and_wait(topic, key, b"r0")
            slow_end_offsets(bus, monkeypatch, 0.5)
            sub = await b.subscribe(key)
            assert sub.overflowed and not sub.live
            await producer.send_and_wait(topic, key, b"r1")
            got: list[bytes] = []

            async def follow() -> None:
                async for record in b.follow(key, partition, first.offset - 1, sub):
                    got.append(record.value)
                    if len(got) == 3:
                        return

            following = asyncio.create_task(follow())
            await wait_until(lambda: len(got) == 2, "the records so far", timeout=10)
            await producer.send_and_wait(topic, key, b"r2")
            async with asyncio.timeout(10):
                await following
            assert got == [b"r0", b"r1", b"r2"]
        finally:
            await b.stop()
    await producer.stop()
