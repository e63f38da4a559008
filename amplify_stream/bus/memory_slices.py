"""Membership-only groups of the memory bus (``Slices``): a topic's partitions shared
round-robin among the members in the order they joined, shared again at every join and
leave. Such a member reads nothing, so unlike a consumer group it never holds records
back from the bus's budget."""

from __future__ import annotations

from amplify_stream.bus.base import ShareCallback, Slices


class SliceGroup:
    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.members: list[MemorySlices] = []

    def join(self, member: MemorySlices) -> None:
        self.members.append(member)
        self._reshare()

    def leave(self, member: MemorySlices) -> None:
        if member in self.members:
            self.members.remove(member)
            self._reshare()

    def _reshare(self) -> None:
        count = len(self.members)
        for turn, member in enumerate(self.members):
            member.assign(frozenset(range(turn, self.partitions, count)))


class MemorySlices(Slices):
    def __init__(self, group: SliceGroup, on_share: ShareCallback) -> None:
        self._group = group
        self._on_share = on_share
        self._share: frozenset[int] = frozenset()

    async def start(self) -> None:
        self._group.join(self)

    async def stop(self) -> None:
        self._group.leave(self)

    def assign(self, share: frozenset[int]) -> None:
        if share != self._share:
            self._share = share
            self._on_share(share)
