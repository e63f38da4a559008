"""What a worker knows of the partitions it was assigned: the hold on each
(``Ownership``), the progress of its records (which offset may be committed), and which
records may have run before (replays after a rebalance or restart, and retries).

Bookkeeping only, no I/O: ``GroupMember`` asks the bus and the group, and tells this."""

from __future__ import annotations

from amplify_stream.bus.base import Record, TopicPartition
from consumers.ownership import Ownership
from consumers.progress import PartitionProgress


def _tp(record: Record) -> TopicPartition:
    return TopicPartition(record.topic, record.partition)


class Partitions:
    def __init__(self) -> None:
        self._owned: dict[TopicPartition, Ownership] = {}
        self._progress: dict[TopicPartition, PartitionProgress] = {}
        # Below these offsets, records may have been worked on by a member that is gone.
        # Kept past a revocation, like ``_fetched``: the next assignment replaces them.
        self._replay_below: dict[TopicPartition, int] = {}
        self._retried: set[tuple[TopicPartition, int]] = set()
        self._fetched: dict[TopicPartition, int] = {}

    # ------------------------------------------------------------ the holds

    def assign(self, tp: TopicPartition, ownership: Ownership) -> None:
        """A fresh start: records of an earlier assignment of ``tp`` count for nothing."""
        self._progress[tp] = PartitionProgress()
        self._owned[tp] = ownership

    def owned(self) -> dict[TopicPartition, Ownership]:
        """The holds now (a copy: the assignment may change while it is read)."""
        return dict(self._owned)

    def get(self, tp: TopicPartition) -> Ownership | None:
        return self._owned.get(tp)

    def lose(self, partitions: set[TopicPartition]) -> None:
        for tp in partitions:
            if (owned := self._owned.get(tp)) is not None:
                owned.lose()

    def release(self, partitions: set[TopicPartition]) -> list[Ownership]:
        """Forget ``partitions``; their holds, for the caller to close."""
        for tp in partitions:
            self._progress.pop(tp, None)
        return [owned for tp in partitions if (owned := self._owned.pop(tp, None)) is not None]

    def release_all(self) -> list[Ownership]:
        """Every hold, forgotten: the worker stops (after its last commit)."""
        owned, self._owned = list(self._owned.values()), {}
        return owned

    def replays_below(self, tp: TopicPartition, end: int) -> None:
        """Records of ``tp`` before ``end`` (its end at assignment) may have run before."""
        self._replay_below[tp] = end

    # ------------------------------------------------------------ the records

    def started(self, record: Record) -> None:
        tp = _tp(record)
        self._progress[tp].start(record.offset)
        self._fetched[tp] = record.offset + 1

    def finished(self, record: Record) -> None:
        """Its offset may be committed once those before it are finished too (nothing
        when its partition went meanwhile)."""
        if (progress := self._progress.get(_tp(record))) is not None:
            progress.finish(record.offset)

    def retrying(self, record: Record) -> None:
        """The record's work failed and is tried again: it may have run before."""
        self._retried.add((_tp(record), record.offset))

    def retried(self, record: Record) -> None:
        """The record's work is no longer tried again (done, given up, or handed back)."""
        self._retried.discard((_tp(record), record.offset))

    def may_have_run(self, record: Record) -> bool:
        tp = _tp(record)
        below = self._replay_below.get(tp)
        # No assignment seen for the partition (a listener that failed): assume the worst.
        return below is None or record.offset < below or (tp, record.offset) in self._retried

    # ------------------------------------------------------------ commits and lag

    def take_commits(self, partitions: set[TopicPartition] | None) -> dict[TopicPartition, int]:
        """The offsets to commit now, of ``partitions`` (of all, with None), once."""
        offsets: dict[TopicPartition, int] = {}
        for tp, progress in self._progress.items():
            if partitions is None or tp in partitions:
                offset = progress.take_commit()
                if offset is not None:
                    offsets[tp] = offset
        return offsets

    def commits_failed(self, offsets: dict[TopicPartition, int]) -> None:
        """Offsets taken whose commit failed: taken again with the next commit."""
        for tp, offset in offsets.items():
            if (pending := self._progress.get(tp)) is not None:
                pending.retry_commit(offset)

    def done_up_to(self, tp: TopicPartition) -> int | None:
        """The oldest offset of ``tp`` not finished (fetched or not), when known."""
        progress = self._progress.get(tp)
        low = progress.low_water() if progress else None
        return low if low is not None else self._fetched.get(tp)
