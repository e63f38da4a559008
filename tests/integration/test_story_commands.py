"""The story commands' publisher (``producers/commands.py``), on both buses: a command is
visible to the workers (read_committed) at the position ``publish`` returned, sixty at once
too; and on the memory bus one refused (``NotPublished``) while the bus is away is never
visible, not after it is back nor after later commands commit. The refusals on a real
broker (records it took late, a commit unanswered, a stop meanwhile) are
tests/faults/test_refused_story.py."""

from __future__ import annotations

import asyncio

import pytest

from amplify_stream.bus import Bus
from amplify_stream.bus.base import Record, TopicSpec
from amplify_stream.bus.memory import MemoryBus
from amplify_stream.config import Settings
from producers.commands import CommandPublisher, NotPublished

pytestmark = pytest.mark.timeout(60)
PARTITIONS = 3


async def committed(bus: Bus, topic: str) -> list[Record]:
    """Every record a worker (read_committed) sees on ``topic``."""
    records = []
    for partition in range(PARTITIONS):
        end = (await bus.end_offsets(topic)).get(partition, 0)
        records += await bus.read_range(topic, partition, 0, end, isolation="read_committed")
    return records


def publisher(bus: Bus, settings: Settings, name: str, producers: int = 2) -> CommandPublisher:
    return CommandPublisher(
        [
            bus.producer(transactional_id=f"{settings.topic_prefix}.{name}.{i}")
            for i in range(producers)
        ],
        bus,
        commit_wait_s=5,
        settle_s=10,
    )


async def test_published_commands_are_visible_in_their_positions(
    bus: Bus, settings: Settings
) -> None:
    topic = settings.topic("stories")
    await bus.ensure_topics([TopicSpec(topic, PARTITIONS)])
    commands = publisher(bus, settings, "cmd")
    await commands.start()
    try:
        # Sixty at once: they go out in a few shared transactions, each at its place.
        positions = await asyncio.gather(
            *(commands.publish(topic, f"k{i}", b"%d" % i, (), timeout_s=10) for i in range(60))
        )
    finally:
        await commands.stop()
    seen = {(r.partition, r.offset): r.value for r in await committed(bus, topic)}
    assert {(p.partition, p.offset): b"%d" % i for i, p in enumerate(positions)}.items() <= (
        seen.items()
    )
    assert commands.refused == commands.unknown == 0


@pytest.mark.parametrize("bus_kind", ["memory"], indirect=True)
async def test_a_refused_command_is_never_visible(bus: Bus, settings: Settings) -> None:
    assert isinstance(bus, MemoryBus)
    topic = settings.topic("stories")
    await bus.ensure_topics([TopicSpec(topic, PARTITIONS)])
    commands = publisher(bus, settings, "cmd")
    await commands.start()
    try:
        bus.set_reachable(False)
        refused = await asyncio.gather(
            *(commands.publish(topic, f"r{i}", b"refused", (), timeout_s=0.5) for i in range(5)),
            return_exceptions=True,
        )
        assert all(isinstance(r, NotPublished) for r in refused), refused
        bus.set_reachable(True)
        after = await commands.publish(topic, "a", b"after", (), timeout_s=5)
    finally:
        await commands.stop()
    values = [r.value for r in await committed(bus, topic)]
    assert values == [b"after"], values
    assert after.offset >= 0
    assert commands.refused == 5
