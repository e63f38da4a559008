"""The bus contract: every test runs on both backends (``[memory]`` and ``[kafka]``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Protocol, TypeVar

import pytest

from amplify_stream.bus import (
    Bus,
    BusFenced,
    BusUnavailable,
    GroupConsumer,
    Record,
    TopicPartition,
    TopicSpec,
    create_bus,
    is_bus_error,
)
from amplify_stream.bus.memory import MemoryBus
from amplify_stream.config import Settings

pytestmark = pytest.mark.timeout(60)

PARTITIONS = 3
WAIT_S = 20.0


class _Client(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


C = TypeVar("C", bound=_Client)


@asynccontextmanager
async def running(client: C) -> AsyncIterator[C]:
    try:
        await client.start()
        yield client
    finally:
        await client.stop()


class Boom(Exception):
    pass


async def collect(consumer: GroupConsumer, count: int) -> list[Record]:
    records: list[Record] = []
    async with asyncio.timeout(WAIT_S):
        while len(records) < count:
            records += await consumer.getmany(timeout_ms=200)
    return records


async def take(records: AsyncIterator[Record], count: int) -> list[Record]:
    taken: list[Record] = []
    async with asyncio.timeout(WAIT_S):
        async for record in records:
            taken.append(record)
            if len(taken) == count:
                break
    return taken


async def until(check: Callable[[], bool], members: Iterable[GroupConsumer]) -> None:
    """Poll the members (keeps them fetching through a rebalance) until ``check`` holds."""
    async with asyncio.timeout(WAIT_S):
        while not check():
            for member in members:
                await member.getmany(timeout_ms=50)


async def topic_with_partitions(bus: Bus, name: str) -> str:
    await bus.ensure_topics([TopicSpec(name, PARTITIONS)])
    return name


def values(records: Iterable[Record]) -> list[bytes]:
    return [r.value for r in records]


# ---------------------------------------------------------------- partitions and order


async def test_one_key_one_partition_in_order(bus: Bus, unique_topic: Callable[..., str]) -> None:
    topic = await topic_with_partitions(bus, unique_topic())
    keys = [f"story-{i}" for i in range(8)]
    async with running(bus.producer()) as producer:
        sent = [
            (key, await producer.send(topic, key, f"{key}:{n}".encode(), [("n", str(n).encode())]))
            for n in range(10)
            for key in keys
        ]
        positions = await asyncio.gather(*(future for _, future in sent))

    landed: dict[str, set[int]] = {}
    for (key, _), position in zip(sent, positions, strict=True):
        landed.setdefault(key, set()).add(position.partition)
    assert all(len(partitions) == 1 for partitions in landed.values())

    async with bus.read(topic, dict.fromkeys(range(PARTITIONS), 0)) as records:
        got = await take(records, len(sent))
    for key in keys:
        mine = [r for r in got if r.key == key]
        assert [r.value for r in mine] == [f"{key}:{n}".encode() for n in range(10)]
        assert [r.header("n") for r in mine] == [str(n).encode() for n in range(10)]
        assert [r.offset for r in mine] == sorted(r.offset for r in mine)


async def test_two_readers_from_the_same_place_both_close(
    bus: Bus, unique_topic: Callable[..., str]
) -> None:
    """Two reads of one partition from one offset (a relay's and a resume's history) end
    in either order, each taking only itself away (the memory bus once removed the first
    equal reader it found, and the second close failed)."""
    topic = await topic_with_partitions(bus, unique_topic())
    async with running(bus.producer()) as producer:
        await producer.send_and_wait(topic, "k", b"v")
    partition = bus.partition_for(topic, "k", PARTITIONS)
    first = bus.read(topic, {partition: 0})
    second = bus.read(topic, {partition: 0})
    records_1 = await first.__aenter__()
    records_2 = await second.__aenter__()
    assert values(await take(records_1, 1)) == values(await take(records_2, 1)) == [b"v"]
    await second.__aexit__(None, None, None)
    async with running(bus.producer()) as producer:
        await producer.send_and_wait(topic, "k", b"w")
    assert values(await take(records_1, 1)) == [b"w"]  # the first moves on, alone
    await first.__aexit__(None, None, None)


async def test_partition_for_is_where_records_land(
    bus: Bus, unique_topic: Callable[..., str]
) -> None:
    topic = await topic_with_partitions(bus, unique_topic())
    keys = [f"k{i}" for i in range(60)]
    async with running(bus.producer()) as producer:
        futures = [await producer.send(topic, key, b"x") for key in keys]
        positions = await asyncio.gather(*futures)
    assert [p.partition for p in positions] == [
        bus.partition_for(topic, k, PARTITIONS) for k in keys
    ]
    # Java's Utils.murmur2 test vectors: the same function as every Kafka client.
    for key, java_hash in {"21": -973932308, "foobar": -790332482, "abc": 479470107}.items():
        assert bus.partition_for(topic, key, 7) == (java_hash & 0x7FFFFFFF) % 7


async def test_send_many_then_await_together(bus: Bus, unique_topic: Callable[..., str]) -> None:
    topic = await topic_with_partitions(bus, unique_topic())
    async with running(bus.producer(low_latency=True)) as producer:
        futures = [await producer.send(topic, f"s{i % 17}", b"%d" % i) for i in range(500)]
        positions = await asyncio.gather(*futures)
    assert len({(p.partition, p.offset) for p in positions}) == 500
    for partition in range(PARTITIONS):
        offsets = sorted(p.offset for p in positions if p.partition == partition)
        assert offsets == list(range(len(offsets)))
    assert sum((await bus.end_offsets(topic)).values()) == 500


# ---------------------------------------------------------------- transactions


async def test_transaction_commit_visible_abort_invisible(
    bus: Bus, settings: Settings, unique_topic: Callable[..., str]
) -> None:
    topic = await topic_with_partitions(bus, unique_topic())
    group = f"{settings.topic_prefix}-g"
    producer = bus.producer(transactional_id=f"{settings.topic_prefix}-tx")
    async with running(producer), running(bus.group_consumer([topic], group)) as consumer:
        async with producer.transaction():
            await producer.send(topic, "s", b"a1")
            await producer.send(topic, "s", b"a2")
        with pytest.raises(Boom):
            async with producer.transaction():
                await producer.send(topic, "s", b"b1")
                raise Boom
        async with producer.transaction():
            await producer.send(topic, "s", b"c1")

        assert values(await collect(consumer, 3)) == [b"a1", b"a2", b"c1"]
        assert await consumer.getmany(timeout_ms=300) == []

    partition = bus.partition_for(topic, "s", PARTITIONS)
    async with bus.read(topic, {partition: 0}, isolation="read_committed") as records:
        assert values(await take(records, 3)) == [b"a1", b"a2", b"c1"]


async def test_read_range_ends_at_the_end_and_skips_aborted(
    bus: Bus, settings: Settings, unique_topic: Callable[..., str]
) -> None:
    topic = await topic_with_partitions(bus, unique_topic())
    partition = bus.partition_for(topic, "s", PARTITIONS)
    producer = bus.producer(transactional_id=f"{settings.topic_prefix}-tx")
    async with running(producer):
        async with producer.transaction():
            await producer.send(topic, "s", b"a1")
        with pytest.raises(Boom):
            async with producer.transaction():
                await producer.send(topic, "s", b"b1")
                raise Boom
        async with producer.transaction():
            await producer.send(topic, "s", b"c1")
        end = (await bus.end_offsets(topic))[partition]
        # The log ends in commit markers on Kafka: the read must still end.
        committed = await bus.read_range(topic, partition, 0, end, isolation="read_committed")
        everything = await bus.read_range(topic, partition, 0, end, isolation="read_uncommitted")
        assert values(committed) == [b"a1", b"c1"]
        assert values(everything) == [b"a1", b"b1", b"c1"]
        assert await bus.read_range(topic, partition, end, end, isolation="read_committed") == []


async def test_open_transaction_is_invisible_until_commit(
    bus: Bus, settings: Settings, unique_topic: Callable[..., str]
) -> None:
    topic = await topic_with_partitions(bus, unique_topic())
    producer = bus.producer(transactional_id=f"{settings.topic_prefix}-tx")
    group = f"{settings.topic_prefix}-g"
    async with running(producer), running(bus.group_consumer([topic], group)) as consumer:
        async with producer.transaction():
            # The position is known before the commit, as on Kafka.
            position = await producer.send_and_wait(topic, "s", b"pending")
            assert await consumer.getmany(timeout_ms=500) == []
        (record,) = await collect(consumer, 1)
    assert (record.partition, record.offset, record.value) == (
        position.partition,
        position.offset,
        b"pending",
    )


async def test_send_offsets_to_transaction_commits_offsets(
    bus: Bus, settings: Settings, unique_topic: Callable[..., str]
) -> None:
    source = await topic_with_partitions(bus, unique_topic("in"))
    sink = await topic_with_partitions(bus, unique_topic("out"))
    group = f"{settings.topic_prefix}-g"
    async with running(bus.producer()) as plain:
        for n in range(4):
            await plain.send_and_wait(source, "k", b"%d" % n)
    tx = bus.producer(transactional_id=f"{settings.topic_prefix}-tx")
    async with running(tx):
        async with running(bus.group_consumer([source], group)) as consumer:
            records = await collect(consumer, 4)
            tp = TopicPartition(source, records[0].partition)
            with pytest.raises(Boom):
                async with tx.transaction():
                    await tx.send(sink, "k", b"aborted")
                    await tx.send_offsets_to_transaction({tp: records[1].offset + 1}, group)
                    raise Boom
        # The aborted offsets were never committed: a new member starts over.
        async with running(bus.group_consumer([source], group)) as consumer:
            assert values(await collect(consumer, 4)) == [b"0", b"1", b"2", b"3"]
            async with tx.transaction():
                await tx.send(sink, "k", b"done")
                await tx.send_offsets_to_transaction({tp: records[-1].offset + 1}, group)

    async with running(bus.producer()) as plain:
        await plain.send_and_wait(source, "k", b"4")
    async with running(bus.group_consumer([source], group)) as consumer:
        assert values(await collect(consumer, 1)) == [b"4"]
        assert await consumer.getmany(timeout_ms=300) == []


async def test_a_newer_transactional_producer_fences_the_older(
    bus: Bus, settings: Settings, unique_topic: Callable[..., str]
) -> None:
    """Zombie fencing: starting a producer with a transactional id that another holds
    makes that other's transactions fail ``BusFenced`` (never a plain bus error, which
    would be retried), and nothing it wrote becomes visible."""
    topic = await topic_with_partitions(bus, unique_topic())
    tx_id = f"{settings.topic_prefix}-fenced"
    zombie, owner = bus.producer(transactional_id=tx_id), bus.producer(transactional_id=tx_id)
    async with running(zombie):
        async with zombie.transaction():
            await zombie.send(topic, "s", b"before")
        async with running(owner):
            with pytest.raises(BusFenced) as raised:
                async with zombie.transaction():
                    await (await zombie.send(topic, "s", b"zombie"))
            assert not is_bus_error(raised.value)
            async with owner.transaction():
                await owner.send(topic, "s", b"owner")
    partition = bus.partition_for(topic, "s", PARTITIONS)
    end = (await bus.end_offsets(topic))[partition]
    committed = await bus.read_range(topic, partition, 0, end, isolation="read_committed")
    assert values(committed) == [b"before", b"owner"]


# ---------------------------------------------------------------- consumer groups


async def test_a_member_lease_is_renewed_while_it_is_in_the_group(
    bus: Bus, make_settings: Callable[..., Settings], unique_topic: Callable[..., str]
) -> None:
    """``membership`` stays certain for as long as the member is in its group (renewed
    by heartbeats: checked past a whole session timeout), and ends when it leaves."""
    settings = make_settings(bus=bus.name, kafka_session_timeout_ms=3000)
    topic = await topic_with_partitions(bus, unique_topic())
    other = create_bus(settings)
    await other.start()
    try:
        member = other.group_consumer([topic], f"{settings.topic_prefix}-lease")
        async with running(member):
            assert member.membership.certain()
            loop = asyncio.get_running_loop()
            until_ = loop.time() + 4.0  # longer than the session timeout
            while loop.time() < until_:
                await member.getmany(timeout_ms=200)
                assert member.membership.certain()
        assert not member.membership.certain()
    finally:
        await other.close()


# ---------------------------------------------------------------- consumer groups (continued)


async def test_group_resumes_from_committed_offset(
    bus: Bus, settings: Settings, unique_topic: Callable[..., str]
) -> None:
    topic = await topic_with_partitions(bus, unique_topic())
    group = f"{settings.topic_prefix}-g"
    async with running(bus.producer()) as producer:
        for n in range(6):
            await producer.send_and_wait(topic, "k", b"%d" % n)
    async with running(bus.group_consumer([topic], group)) as consumer:
        records = await collect(consumer, 6)
        await consumer.commit({TopicPartition(topic, records[2].partition): records[2].offset + 1})
    async with running(bus.group_consumer([topic], group)) as consumer:
        assert values(await collect(consumer, 3)) == [b"3", b"4", b"5"]


async def test_members_split_partitions_and_take_over(
    bus: Bus, settings: Settings, unique_topic: Callable[..., str]
) -> None:
    topic = await topic_with_partitions(bus, unique_topic())
    group = f"{settings.topic_prefix}-g"
    every = {TopicPartition(topic, p) for p in range(PARTITIONS)}
    assigned: list[set[TopicPartition]] = []
    revoked: list[set[TopicPartition]] = []

    async def on_assigned(tps: set[TopicPartition]) -> None:
        assigned.append(tps)

    async def on_revoked(tps: set[TopicPartition]) -> None:
        revoked.append(tps)

    first = bus.group_consumer([topic], group, on_assigned=on_assigned, on_revoked=on_revoked)
    async with running(first):
        await until(lambda: first.assignment() == every, [first])
        second = bus.group_consumer([topic], group)
        async with running(second):

            def split() -> bool:
                a, b = first.assignment(), second.assignment()
                settled = bool(a) and bool(b) and not a & b and a | b == every
                # The callback runs just after the assignment changes.
                return settled and assigned[-1] == a

            await until(split, [first, second])
            moved = every - first.assignment()
            assert revoked
        await until(lambda: first.assignment() == every and assigned[-1] == every, [first])

        # The leaver's partitions now deliver to the remaining member.
        keys = {bus.partition_for(topic, f"k{i}", PARTITIONS): f"k{i}" for i in range(50)}
        assert set(keys) == set(range(PARTITIONS))
        async with running(bus.producer()) as producer:
            for key in keys.values():
                await producer.send_and_wait(topic, key, key.encode())
        got = await collect(first, PARTITIONS)
        assert {TopicPartition(topic, r.partition) for r in got} >= moved


# ---------------------------------------------------------------- readers outside groups


async def test_read_from_offset(bus: Bus, unique_topic: Callable[..., str]) -> None:
    topic = await topic_with_partitions(bus, unique_topic())
    async with running(bus.producer()) as producer:
        positions = [await producer.send_and_wait(topic, "k", b"%d" % n) for n in range(10)]
    partition = positions[0].partition
    async with bus.read(topic, {partition: positions[4].offset}) as records:
        got = await take(records, 6)
    assert [r.offset for r in got] == [p.offset for p in positions[4:]]
    assert values(got) == [b"%d" % n for n in range(4, 10)]
    assert got[0].cursor == positions[4].cursor


async def test_read_end_sees_only_new_records(bus: Bus, unique_topic: Callable[..., str]) -> None:
    topic = await topic_with_partitions(bus, unique_topic())
    async with running(bus.producer()) as producer:
        for n in range(3):
            await producer.send_and_wait(topic, f"k{n}", b"old")
        async with bus.read(topic, "end") as records:
            for n in range(3):
                await producer.send_and_wait(topic, f"k{n}", b"new")
            got = await take(records, 3)
    assert values(got) == [b"new"] * 3


async def test_end_and_begin_offsets(bus: Bus, unique_topic: Callable[..., str]) -> None:
    topic = await topic_with_partitions(bus, unique_topic())
    empty = dict.fromkeys(range(PARTITIONS), 0)
    assert await bus.begin_offsets(topic) == empty
    assert await bus.end_offsets(topic) == empty
    async with running(bus.producer()) as producer:
        for _ in range(5):
            await producer.send_and_wait(topic, "a", b"x")
    expected = empty | {bus.partition_for(topic, "a", PARTITIONS): 5}
    assert await bus.end_offsets(topic) == expected
    assert await bus.begin_offsets(topic) == empty


async def test_topics_are_created_on_first_use(
    bus: Bus, settings: Settings, unique_topic: Callable[..., str]
) -> None:
    # A partition count no broker defaults to: the bus's own creation is what is checked.
    own = create_bus(settings.model_copy(update={"topic_partitions": 5}))
    await own.start()
    try:
        assert await own.end_offsets(unique_topic("offsets")) == dict.fromkeys(range(5), 0)
        topic = unique_topic("group")
        async with running(own.group_consumer([topic], f"{settings.topic_prefix}-g")) as member:
            await until(lambda: len(member.assignment()) == 5, [member])
    finally:
        await own.close()


# ---------------------------------------------------------------- health


async def test_ping(bus: Bus) -> None:
    await bus.ping()


async def test_a_closed_bus_is_unavailable(settings: Settings) -> None:
    own = create_bus(settings)
    await own.start()
    await own.close()
    with pytest.raises(BusUnavailable):
        await own.ping()


async def test_unreachable_broker_is_bus_unavailable() -> None:
    # Port 1: nothing listens there; no broker needed for this test.
    unreachable = Settings(_env_file=None, bus="kafka", kafka_bootstrap_servers="127.0.0.1:1")
    async with asyncio.timeout(WAIT_S):
        with pytest.raises(BusUnavailable):
            await create_bus(unreachable).start()
        with pytest.raises(BusUnavailable):
            await create_bus(unreachable).producer().start()
    memory = create_bus(Settings(_env_file=None, bus="memory"))
    with pytest.raises(BusUnavailable):
        await memory.ping()  # not started


async def test_a_memory_bus_away_raises_bus_unavailable() -> None:
    """The outage the memory bus simulates fails every call as Kafka's backend does: with
    the port's ``BusUnavailable``, a bus error (the work is retried, never failed)."""
    bus = MemoryBus(Settings(_env_file=None, bus="memory"))
    await bus.start()
    try:
        async with running(bus.producer(transactional_id="tx")) as producer:
            bus.set_reachable(False)
            attempts = {
                "ping": bus.ping,
                "end_offsets": lambda: bus.end_offsets("t"),
                "read_range": lambda: bus.read_range("t", 0, 0, 1, isolation="read_committed"),
                "send": lambda: producer.send("t", "k", b"v"),
            }
            for name, attempt in attempts.items():
                with pytest.raises(BusUnavailable) as raised:
                    await attempt()
                assert is_bus_error(raised.value), name
            bus.set_reachable(True)
            with pytest.raises(BusUnavailable):
                async with producer.transaction():
                    await producer.send("t", "k", b"lost")
                    bus.set_reachable(False)  # gone before the commit: aborted
            bus.set_reachable(True)
            partition = bus.partition_for("t", "k", bus.topic("t").partitions)
            committed = await bus.read_range("t", partition, 0, 1, isolation="read_committed")
            assert committed == []
    finally:
        await bus.close()


async def test_the_memory_bound_keeps_what_a_group_without_members_has_yet_to_read() -> None:
    """A group's members may all be gone for a while (a restart): what it has not read is
    still its to read. And the bound never takes a compacted topic's newest record."""
    bus = MemoryBus(Settings(_env_file=None, bus="memory", memory_bus_bytes=1024 * 1024))
    await bus.start()
    try:
        await bus.ensure_topics([TopicSpec("snap", 1, compacted=True)])
        async with running(bus.producer()) as producer:
            await producer.send("snap", "doc", b"s" * 20_000)
            member = bus.group_consumer(["cmd"], "g")
            await member.start()
            await member.stop()
            for n in range(2_000):
                await producer.send("cmd", f"k{n}", b"c" * 1_000)
        assert set((await bus.begin_offsets("cmd")).values()) == {0}
        assert (await bus.begin_offsets("snap")) == {0: 0}
        assert len(await bus.read_range("snap", 0, 0, 1, isolation="read_committed")) == 1
    finally:
        await bus.close()
