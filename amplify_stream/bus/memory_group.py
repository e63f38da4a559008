"""Consumer groups of the memory bus, rebalanced the way aiokafka's classic groups are.

Every join or leave is an eager rebalance: each remaining member is told that all its
partitions are revoked, then gets its new share (round-robin over the sorted partitions,
like ``RoundRobinPartitionAssignor``) and restarts from the committed offsets. A member
that stops is not called back (aiokafka does not call the listener on ``stop`` either),
and a failing callback is logged, not raised, as aiokafka does.

``Group.expire`` does what a session timeout does to a frozen member: the group drops it
without telling it, and it finds out at its next poll (as at its next heartbeat on
Kafka), when it is called back with its revoked partitions and joins again. Until then
its lease (``membership``) has run out. A poll is this bus's heartbeat: each one renews the
lease of a member in the group.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Sequence
from typing import Literal

from amplify_stream.bus.base import (
    BusUnavailable,
    GroupConsumer,
    Isolation,
    RebalanceCallback,
    Record,
    TopicPartition,
)
from amplify_stream.bus.membership import Membership, clock
from amplify_stream.bus.memory_log import Topic

log = logging.getLogger(__name__)

# A member dropped by ``Group.expire`` learns it this long after (a heartbeat interval).
NOTICE_AFTER_S = 1.0


class Group:
    def __init__(self, group_id: str) -> None:
        self.group_id = group_id
        self.members: list[MemoryGroupConsumer] = []
        self.committed: dict[TopicPartition, int] = {}
        # Every topic a member of the group has read: the group still holds back what it
        # has yet to read of them when no member is there (between a restart and a join).
        self.topics_read: set[str] = set()
        # Callbacks are awaited: one rebalance at a time.
        self._lock = asyncio.Lock()

    async def join(self, member: MemoryGroupConsumer) -> None:
        async with self._lock:
            self.members.append(member)
            self.topics_read |= member.topic_names
            await self._rebalance()

    async def leave(self, member: MemoryGroupConsumer) -> None:
        async with self._lock:
            if member in self.members:
                self.members.remove(member)
                await self._rebalance()

    async def expire(self, member: MemoryGroupConsumer) -> None:
        """Drop ``member`` as its session timeout would: it is not called back."""
        async with self._lock:
            if member in self.members:
                self.members.remove(member)
                member.expired()
                await self._rebalance()

    async def _rebalance(self) -> None:
        for member in self.members:
            await member.revoke()
        for member, share in self._shares().items():
            await member.assign(share, self.committed)

    def _shares(self) -> dict[MemoryGroupConsumer, set[TopicPartition]]:
        shares: dict[MemoryGroupConsumer, set[TopicPartition]] = {m: set() for m in self.members}
        partitions = sorted(
            {
                TopicPartition(t.name, p)
                for m in self.members
                for t in m.topics
                for p in range(t.partitions)
            },
            key=lambda tp: (tp.topic, tp.partition),
        )
        turn = 0
        for tp in partitions:
            # Skip members not subscribed to this topic; one of them is.
            while tp.topic not in self.members[turn % len(self.members)].topic_names:
                turn += 1
            shares[self.members[turn % len(self.members)]].add(tp)
            turn += 1
        return shares


class MemoryGroupConsumer(GroupConsumer):
    def __init__(
        self,
        resolve: Callable[[str], Topic],
        topics: Sequence[str],
        group: Group,
        isolation: Isolation,
        on_assigned: RebalanceCallback | None,
        on_revoked: RebalanceCallback | None,
    ) -> None:
        self._resolve = resolve
        self.topic_names = frozenset(topics)
        self.topics: list[Topic] = []
        self._group = group
        self._isolation = isolation
        self._on_assigned = on_assigned
        self._on_revoked = on_revoked
        self._positions: dict[TopicPartition, int] = {}
        self._wakeup = asyncio.Event()
        self._state: Literal["new", "running", "stopped"] = "new"
        self._turn = 0  # rotates the first partition served, so none starves
        # Certain while in the group (nothing here can freeze); ended by ``expire``.
        self.membership = Membership(math.inf)
        # Dropped by the group and not told yet: the partitions it believes it holds.
        self._lost: set[TopicPartition] | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # its finding out (kept referenced)

    async def start(self) -> None:
        if self._state != "new":
            raise RuntimeError("a group consumer starts once")
        # Subscribing creates missing topics, like Kafka's auto-create.
        self.topics = [self._resolve(name) for name in sorted(self.topic_names)]
        for topic in self.topics:
            topic.watchers.add(self._wakeup)
        self._state = "running"
        await self._group.join(self)

    async def stop(self) -> None:
        if self._state != "running":
            self._state = "stopped"
            return
        self._state = "stopped"
        self.membership.end()
        for topic in self.topics:
            topic.watchers.discard(self._wakeup)
        self._positions = {}
        self._wakeup.set()  # a getmany waiting in another task returns now
        await self._group.leave(self)

    async def getmany(self, timeout_ms: int, max_records: int | None = None) -> list[Record]:
        if self._state != "running":
            raise RuntimeError(f"the consumer is {self._state}, not running")
        loop = asyncio.get_running_loop()
        if self._lost is None:
            # A poll is this bus's heartbeat: the group confirms its members.
            self.membership.renew(clock())
        # Dropped and not told yet: it has no partitions, so this waits and finds nothing.
        deadline = loop.time() + timeout_ms / 1000
        while self._state == "running":
            self._wakeup.clear()  # before fetching: a change from now on wakes us
            records = self._fetch(max_records)
            remaining = deadline - loop.time()
            if records or remaining <= 0:
                return records
            try:
                async with asyncio.timeout(remaining):
                    await self._wakeup.wait()
            except TimeoutError:
                return []
        return []

    def _fetch(self, max_records: int | None) -> list[Record]:
        records: list[Record] = []
        order = sorted(self._positions, key=lambda tp: (tp.topic, tp.partition))
        if not order:
            return records
        first = self._turn % len(order)
        self._turn += 1
        for tp in order[first:] + order[:first]:
            limit = None if max_records is None else max_records - len(records)
            if limit == 0:
                break
            topic = self._resolve(tp.topic)
            batch, self._positions[tp] = topic.fetch(
                tp.partition, self._positions[tp], self._isolation, limit
            )
            records.extend(batch)
        return records

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self._lost is not None or self not in self._group.members:
            # Kafka refuses a commit of a member it does not know (CommitFailedError).
            raise BusUnavailable(f"not a member of group {self._group.group_id} any more")
        self._group.committed.update(offsets)

    def expired(self) -> None:
        self._lost = set(self._positions)
        self._positions = {}
        self.membership.end()
        # It finds out a heartbeat interval later, as on Kafka: whatever its poll loop is
        # doing (its tasks may all be waiting on their lease).
        loop = asyncio.get_running_loop()
        loop.call_later(NOTICE_AFTER_S, lambda: self._tasks.add(loop.create_task(self._rejoin())))

    async def _rejoin(self) -> None:
        """Found out it was dropped: revoke what it held, as aiokafka does, and join again."""
        if self._lost is None or self._state != "running":
            return
        lost, self._lost = self._lost, None
        try:
            await _notify(self._on_revoked, lost, "on_revoked", self._group.group_id)
            await self._group.join(self)
        finally:
            self._tasks.discard(asyncio.current_task())

    def assignment(self) -> set[TopicPartition]:
        return set(self._positions)

    async def revoke(self) -> None:
        revoked = set(self._positions)
        self._positions = {}
        await _notify(self._on_revoked, revoked, "on_revoked", self._group.group_id)

    async def assign(
        self, share: set[TopicPartition], committed: dict[TopicPartition, int]
    ) -> None:
        self._positions = {
            tp: self._resolve(tp.topic).valid_offset(tp.partition, committed.get(tp, 0))
            for tp in share
        }
        self.membership.renew(clock())
        self._wakeup.set()
        await _notify(self._on_assigned, set(share), "on_assigned", self._group.group_id)


async def _notify(
    callback: RebalanceCallback | None, tps: set[TopicPartition], what: str, group_id: str
) -> None:
    if callback is None:
        return
    try:
        await callback(tps)
    except Exception:
        log.exception("%s callback failed in group %s", what, group_id)
