"""A story command refused is never seen by the workers, and one accepted always is, on a
real broker frozen (SIGSTOP) under commands and thawed (SIGCONT): it then processes what
waited in its sockets, records and commits sent while it was frozen.

Commands go out every few milliseconds through the gateway's publisher
(``producers/commands.py``), each with a one-second deadline. Three faults:

- freezes at random moments, until one catches records on their way: refused
  (``NotPublished``), yet written to the log once the broker thaws (a read_uncommitted
  reader finds them: the fault hit). Before the publisher committed in transactions such
  a record was an ordinary write, and its story ran after a 503
  (tests/faults/test_broker_outage.py counted 5 and 10);
- a freeze the moment a commit goes out: its answer does not come within the wait, the
  thawed broker commits it, and the publisher must learn that from the log (``settled``)
  and accept those commands, not refuse them;
- the same, with the publisher stopping meanwhile (a gateway shutting down).

A read_committed reader, as the workers read, sees every accepted command at its position
and not one refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from amplify_stream.bus import create_bus
from amplify_stream.bus.base import Bus, Headers, Position, Producer, TopicPartition, TopicSpec
from amplify_stream.config import Settings
from producers.commands import CommandPublisher, NotPublished
from tests.faults.broker import Broker
from tests.faults.report import Counts, report

PARTITIONS = 3
SEND_EVERY_S = 0.005
DEADLINE_S = 1.0
# Longer than COMMIT_WAIT_S plus what is left of a deadline: a commit on its way when the
# broker froze is not answered within its wait, and its outcome is read from the log.
FROZEN_S = 2.5
COMMIT_WAIT_S = 1.0
SETTLE_S = 30.0
CYCLES = 4
COMMIT_FREEZES = 3
PRODUCERS = 3


async def all_records(bus: Bus, topic: str, isolation: str) -> dict[bytes, tuple[int, int]]:
    """value -> (partition, offset) of every record ``isolation`` lets a reader see."""
    ends = await bus.end_offsets(topic)
    seen: dict[bytes, tuple[int, int]] = {}
    for partition in range(PARTITIONS):
        records = await bus.read_range(
            topic,
            partition,
            0,
            ends.get(partition, 0),
            isolation="read_committed" if isolation == "committed" else "read_uncommitted",
        )
        seen |= {r.value or b"": (r.partition, r.offset) for r in records}
    return seen


class Traffic:
    """Commands sent every SEND_EVERY_S, each told accepted or refused."""

    def __init__(self, publisher: CommandPublisher, topic: str) -> None:
        self.publisher = publisher
        self.topic = topic
        self.accepted: dict[bytes, Position] = {}
        self.refused: list[bytes] = []
        self.other: list[str] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def one(self, value: bytes) -> None:
        try:
            self.accepted[value] = await self.publisher.publish(
                self.topic, value.decode(), value, (), timeout_s=DEADLINE_S
            )
        except NotPublished:
            self.refused.append(value)
        except Exception as exc:  # anything else is a failure, reported
            self.other.append(repr(exc))

    async def run_for(self, seconds: float) -> None:
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            task = asyncio.create_task(self.one(uuid.uuid4().hex.encode()))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            await asyncio.sleep(SEND_EVERY_S)

    async def answered(self) -> None:
        await asyncio.gather(*self._tasks)


@pytest.mark.kafka
@pytest.mark.timeout(180)
async def test_a_refused_story_command_is_never_seen(own_broker: Broker, tmp_path: Path) -> None:
    settings = Settings(
        bus="kafka",
        kafka_bootstrap_servers=own_broker.bootstrap,
        topic_prefix="refused",
        data_dir=tmp_path,
        jwt_secret="test-secret-" + "x" * 32,
    )
    bus = create_bus(settings)
    await bus.start()
    topic = settings.topic("stories")
    await bus.ensure_topics([TopicSpec(topic, PARTITIONS)])
    freezer = Freezer(int((Path(own_broker.env["KAFKA_RUN"]) / "kafka.pid").read_text()))
    producers: list[Producer] = [
        bus.producer(transactional_id=f"refused.{i}") for i in range(PRODUCERS)
    ]
    producers[0] = FreezeAtCommit(producers[0], freezer)
    publisher = CommandPublisher(producers, bus, commit_wait_s=COMMIT_WAIT_S, settle_s=SETTLE_S)
    await publisher.start()
    traffic = Traffic(publisher, topic)
    taken: list[bytes] = []
    accepted_after_thaw: list[int] = []
    cycles = 0
    commit_freezes = 0

    async def then_traffic() -> None:
        before = len(traffic.accepted)
        await traffic.run_for(3.0)  # sent while the broker catches up and after
        await traffic.answered()
        accepted_after_thaw.append(len(traffic.accepted) - before)

    try:
        # 1. Freezes at random moments, until one caught records on their way.
        while cycles < CYCLES and not taken:
            cycles += 1
            await traffic.run_for(0.5)
            async with freezer.frozen():
                await traffic.run_for(FROZEN_S)
            await then_traffic()
            written = await all_records(bus, topic, "uncommitted")
            taken = [v for v in traffic.refused if v in written]
        # 2. A freeze as a commit goes out (producer 0's, the moment its records are
        # acknowledged): the commit is answered only after its wait, and settled from
        # the log. Again (up to COMMIT_FREEZES) until one is.
        settled_before = publisher.settled
        while commit_freezes < COMMIT_FREEZES and publisher.settled == settled_before:
            commit_freezes += 1
            await traffic.run_for(0.5)
            await freezer.at_next_commit(traffic)
            await then_traffic()
        settled = publisher.settled - settled_before
        # 3. The same while the publisher stops: stop() waits for the commit under way,
        # and each of its commands gets the verdict the log bears out.
        await traffic.run_for(0.5)
        stop_done = await freezer.at_next_commit(traffic, then=publisher.stop)
        await traffic.answered()
        visible = await all_records(bus, topic, "committed")
    finally:
        freezer.thaw()
        await publisher.stop()
        await bus.close()

    refused_visible = [v for v in traffic.refused if v in visible]
    accepted_missing = [v for v, pos in traffic.accepted.items() if visible.get(v) != pos_of(pos)]
    report(
        Counts(
            "test_a_refused_story_command_is_never_seen",
            trials=len(traffic.accepted) + len(traffic.refused),
            accepted=len(traffic.accepted),
            completed=len(traffic.accepted) - len(accepted_missing),
            lost=len(accepted_missing),
            duplicated=0,  # a command is one record: its position says which
            unaccepted=len(refused_visible),
            details=[
                f"random_freezes={cycles} commit_freezes={commit_freezes}+1 "
                f"refused={len(traffic.refused)} "
                f"refused_but_written={len(taken)} commits_settled_from_the_log="
                f"{publisher.settled} unknown={publisher.unknown} "
                f"accepted_after_each_thaw={accepted_after_thaw} "
                f"stop_returned_after_the_thaw_by={stop_done:.2f}s"
            ],
        )
    )
    assert not traffic.other, traffic.other[:5]
    # The faults hit: the broker took records whose commands had been refused, and the
    # commits frozen on their way went unanswered past their wait (both, the second
    # while stopping).
    assert taken, f"no refused command reached the log in {cycles} freezes"
    assert settled >= 1, f"no frozen commit was settled from the log in {commit_freezes}"
    # The premise of the third: stop() overlapped the frozen commit (it did not return
    # before the thaw); that it waited for its verdict is `unknown == 0` below (a stop
    # that cancels the commit under way counts it unknown, and it may be visible).
    assert stop_done >= 0, f"stop() returned {-stop_done:.2f}s before the thaw"
    # Within the settle time every outcome was learned: none refused without knowing.
    assert publisher.unknown == 0
    # The publisher recovers: commands are accepted again after each thaw.
    assert all(accepted_after_thaw), accepted_after_thaw
    assert refused_visible == [], f"{len(refused_visible)} refused commands are visible"
    assert accepted_missing == [], f"{len(accepted_missing)} accepted commands are missing"


class Freezer:
    """SIGSTOP and SIGCONT for the broker's JVM."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.is_frozen = False
        self.armed: asyncio.Event | None = None

    def freeze(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)
        self.is_frozen = True

    def thaw(self) -> None:
        if self.is_frozen:
            os.kill(self.pid, signal.SIGCONT)
            self.is_frozen = False

    @contextlib.asynccontextmanager
    async def frozen(self) -> AsyncIterator[None]:
        self.freeze()
        try:
            yield
        finally:
            self.thaw()

    async def at_next_commit(
        self, traffic: Traffic, then: Callable[[], Awaitable[None]] | None = None
    ) -> float:
        """Traffic until producer 0 is about to commit, frozen there (``FreezeAtCommit``)
        for FROZEN_S of traffic (``then`` started meanwhile), then thawed. How long after
        the thaw ``then`` returned (negative: before it)."""
        self.armed = asyncio.Event()
        sending = asyncio.create_task(traffic.run_for(FROZEN_S + 5))
        try:
            async with asyncio.timeout(10):
                await self.armed.wait()  # frozen by the producer, its commit on the way
            loop = asyncio.get_running_loop()

            async def then_timed() -> float:
                assert then is not None
                await then()
                return loop.time()

            pending = asyncio.create_task(then_timed()) if then is not None else None
            await asyncio.sleep(FROZEN_S)
            thawed_at = loop.time()
            self.thaw()
            return 0.0 if pending is None else await pending - thawed_at
        finally:
            self.armed = None
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
            self.thaw()


class FreezeAtCommit(Producer):
    """The publisher's producer (the port's, over aiokafka), freezing the broker when
    armed, at the end of a transaction's body: its records acknowledged, its commit
    about to go out into the frozen broker's socket."""

    def __init__(self, inner: Producer, freezer: Freezer) -> None:
        self.inner = inner
        self.freezer = freezer

    async def start(self) -> None:
        await self.inner.start()

    async def stop(self) -> None:
        await self.inner.stop()

    async def send(
        self,
        topic: str,
        key: str,
        value: bytes | None,
        headers: Headers = (),
        timestamp_ms: int | None = None,
    ) -> Awaitable[Position]:
        return await self.inner.send(topic, key, value, headers, timestamp_ms)

    async def flush(self) -> None:
        await self.inner.flush()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        async with self.inner.transaction():
            yield
            armed = self.freezer.armed
            if armed is not None and not armed.is_set():
                self.freezer.freeze()
                armed.set()

    async def send_offsets_to_transaction(
        self, offsets: dict[TopicPartition, int], group_id: str
    ) -> None:
        await self.inner.send_offsets_to_transaction(offsets, group_id)


def pos_of(position: Position) -> tuple[int, int]:
    return position.partition, position.offset
