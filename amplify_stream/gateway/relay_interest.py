"""Which stream partitions a gateway's relay reads: its home slice, those a socket here
watches a key of, and those it watched less than a linger ago (so a socket that comes
back does not start the reader over). ``changed`` is set whenever that set grows or
shrinks; the reader starts over from the positions it reached."""

from __future__ import annotations

import asyncio
from collections import Counter

# How long a partition no socket here watches any more is still read.
LINGER_S = 30.0


class PartitionInterest:
    def __init__(self, linger_s: float = LINGER_S) -> None:
        self._linger_s = linger_s
        self.home: frozenset[int] = frozenset()
        self._watchers: Counter[int] = Counter()
        self._lingering: dict[int, asyncio.TimerHandle] = {}
        self.changed = asyncio.Event()

    def wanted(self) -> frozenset[int]:
        return self.home | self._watchers.keys() | self._lingering.keys()

    def set_home(self, share: frozenset[int]) -> None:
        for partition in self.home - share:
            if not self._watchers[partition]:
                self._linger(partition)
        self.home = share
        self.changed.set()

    def watch(self, partition: int) -> bool:
        """One more watcher of ``partition``; whether the reader must add it."""
        self._watchers[partition] += 1
        if (handle := self._lingering.pop(partition, None)) is not None:
            handle.cancel()
            return False
        return self._watchers[partition] == 1 and partition not in self.home

    def unwatch(self, partition: int) -> None:
        self._watchers[partition] -= 1
        if self._watchers[partition] <= 0:
            del self._watchers[partition]
            if partition not in self.home:
                self._linger(partition)

    def close(self) -> None:
        for handle in self._lingering.values():
            handle.cancel()
        self._lingering.clear()

    def _linger(self, partition: int) -> None:
        if partition in self._lingering:
            return

        def drop() -> None:
            del self._lingering[partition]
            self.changed.set()

        self._lingering[partition] = asyncio.get_running_loop().call_later(self._linger_s, drop)
