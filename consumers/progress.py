"""Which offset of a partition a worker may commit: only past records that are finished,
and every record before them too, so a crash replays unfinished stories and never skips
one."""

from __future__ import annotations

from collections import deque


class PartitionProgress:
    """Offsets started and finished in one partition; tells the next offset to commit."""

    def __init__(self) -> None:
        self._started: deque[int] = deque()
        self._finished: set[int] = set()
        self._committable: int | None = None

    def start(self, offset: int) -> None:
        self._started.append(offset)

    def finish(self, offset: int) -> None:
        self._finished.add(offset)
        while self._started and self._started[0] in self._finished:
            done = self._started.popleft()
            self._finished.discard(done)
            self._committable = done + 1

    def retry_commit(self, offset: int) -> None:
        if self._committable is None or self._committable < offset:
            self._committable = offset

    def low_water(self) -> int | None:
        """The oldest offset not finished yet, when any runs."""
        return self._started[0] if self._started else None

    def take_commit(self) -> int | None:
        """The next offset to commit, once; None when nothing new finished."""
        offset, self._committable = self._committable, None
        return offset

    @property
    def in_flight(self) -> int:
        return len(self._started)
