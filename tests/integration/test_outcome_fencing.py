"""The fence behind the lease, on both buses: outcome publishers of one input partition
share its transactional id, so the newest to start fences the others. A zombie whose
lease is wrong (it believes it still owns the partition) tries to commit an outcome: the
broker refuses it, the group's next word says the partition is gone, and nothing of the
zombie's is ever visible; the owner's outcome is, once."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from amplify_stream.bus import Bus
from amplify_stream.bus.base import TopicPartition, TopicSpec
from amplify_stream.config import Settings
from amplify_stream.events import StoryCompletedOutcome, StoryTimings
from consumers.ownership import transactional_id
from producers.lease import PartitionLost
from producers.outcomes import OutcomePublisher

PARTITIONS = 3


class WrongLease:
    """A lease that holds though the partition is gone (a clock that lies, say), until
    the group is asked: then it is lost."""

    def __init__(self) -> None:
        self.asked = 0

    def holds(self) -> bool:
        return True

    async def hold(self) -> None:
        return None

    async def after_fence(self) -> None:
        self.asked += 1
        raise PartitionLost("the group revoked it")


def outcome(story_id: str, attempt: int) -> StoryCompletedOutcome:
    return StoryCompletedOutcome(
        story_id=story_id,
        user_id="u",
        attempt=attempt,
        status="completed",
        timings=StoryTimings(total_ms=1.0),
    )


async def test_a_zombie_with_a_wrong_lease_cannot_commit_an_outcome(
    bus: Bus, settings: Settings, unique_topic: Callable[..., str]
) -> None:
    topic = unique_topic("outcomes")
    await bus.ensure_topics([TopicSpec(topic, PARTITIONS)])
    tx_id = transactional_id(f"{settings.topic_prefix}.enhancer", TopicPartition("stories", 0))
    lease = WrongLease()
    zombie = OutcomePublisher(bus.producer(transactional_id=tx_id), topic, lease)
    owner = OutcomePublisher(bus.producer(transactional_id=tx_id), topic)
    await zombie.start()
    try:
        await owner.start()  # the new owner of the partition: fences the zombie
        try:
            with pytest.raises(PartitionLost):
                await zombie.publish([outcome("s", 1)])
            assert lease.asked == 1
            await owner.publish([outcome("s", 2)])
        finally:
            await owner.stop()
    finally:
        await zombie.stop()
    partition = bus.partition_for(topic, "s", PARTITIONS)
    end = (await bus.end_offsets(topic))[partition]
    records = await bus.read_range(topic, partition, 0, end, isolation="read_committed")
    assert [json.loads(r.value)["attempt"] for r in records] == [2]
