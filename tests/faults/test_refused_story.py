"""A story command refused is never seen by the workers, on a real broker that froze
(SIGSTOP) mid-traffic and took, once thawed, requests it had been sent while frozen.

Commands go out every few milliseconds through the gateway's publisher
(``producers/commands.py``), each with a one-second deadline. The broker is frozen for
longer than that, so the commands then in flight are refused (``NotPublished``): the
answer did not come in time, whatever the broker does with them later. Once thawed, the
broker processes what waited in its sockets, so some refused records are written to the
log. The test proves the fault hit that way (a read_uncommitted reader finds refused
records in the log: the broker took them), and that a read_committed reader, as the
workers read, sees every accepted command and not one refused. Before the publisher
committed in transactions, such a record was an ordinary write: its story ran after the
client had been told 503 (tests/faults/test_broker_outage.py counted 5 and 10 of them).
Freezes repeat, up to ``CYCLES``, until one catches a record on its way.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from pathlib import Path

import pytest

from amplify_stream.bus import create_bus
from amplify_stream.bus.base import Bus, Position, TopicSpec
from amplify_stream.config import Settings
from producers.commands import CommandPublisher, NotPublished
from tests.faults.broker import Broker
from tests.faults.report import Counts, report

PARTITIONS = 3
SEND_EVERY_S = 0.005
DEADLINE_S = 1.0
FROZEN_S = 2.5
CYCLES = 4


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
    publisher = CommandPublisher(
        [bus.producer(transactional_id=f"refused.{i}") for i in range(3)],
        commit_wait_s=3 * DEADLINE_S,
    )
    await publisher.start()
    pid = int((Path(own_broker.env["KAFKA_RUN"]) / "kafka.pid").read_text())
    traffic = Traffic(publisher, topic)
    taken: list[bytes] = []
    cycles = 0
    try:
        while cycles < CYCLES and not taken:
            cycles += 1
            await traffic.run_for(0.5)
            os.kill(pid, signal.SIGSTOP)
            try:
                await traffic.run_for(FROZEN_S)
            finally:
                os.kill(pid, signal.SIGCONT)
            await traffic.run_for(3.0)  # sent while the broker catches up and after
            await traffic.answered()
            written = await all_records(bus, topic, "uncommitted")
            taken = [v for v in traffic.refused if v in written]
        visible = await all_records(bus, topic, "committed")
    finally:
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
            duplicated=0,
            unaccepted=len(refused_visible),
            details=[
                f"freezes={cycles} refused={len(traffic.refused)} "
                f"refused_but_written={len(taken)} unknown_commits={publisher.unknown}"
            ],
        )
    )
    assert not traffic.other, traffic.other[:5]
    # The fault hit: the broker took records whose commands had been refused.
    assert taken, f"no refused command reached the log in {cycles} freezes"
    assert refused_visible == [], f"{len(refused_visible)} refused commands are visible"
    assert accepted_missing == [], f"{len(accepted_missing)} accepted commands are missing"


def pos_of(position: Position) -> tuple[int, int]:
    return position.partition, position.offset
