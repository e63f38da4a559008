"""The end offsets of a topic as read lately, for the start of a new story's history.

A story's events start after the end offsets read before its command is produced. Any
end offset read earlier is at or below the later one, so a reading that is a little old
is still a correct start: it only makes a later catch-up read (a cursor's, the worker's
outcome history) go over a little more of the log. Read per story it cost a ListOffsets
round trip to the broker for each topic and each story (by profile, the broker's and the
gateway's CPU); here a reading serves every story for ``max_age_s``, and concurrent
callers share one read. Past that age a reading is still given out while a new one is
read in the background, up to ``STALE_S``: no story waits for the broker then (each
refresh held up every story that came meanwhile, by measure the p99 of the accept).
"""

from __future__ import annotations

import asyncio
import time

from amplify_stream.bus.base import Bus

# How old a reading may be given out while a new one is read; past it callers wait (so a
# bus that stopped answering is noticed, and a catch-up never reads far back).
STALE_S = 30.0


class RecentEndOffsets:
    def __init__(self, bus: Bus, topic: str, *, max_age_s: float, timeout_s: float) -> None:
        self._bus = bus
        self._topic = topic
        self._max_age_s = max_age_s
        self._timeout_s = timeout_s
        self._ends: dict[int, int] | None = None
        self._read_at = 0.0
        self._reading: asyncio.Task[dict[int, int]] | None = None

    async def get(self) -> dict[int, int]:
        """Partition -> end offset, read at most ``max_age_s`` ago (``STALE_S`` while a
        newer reading is on its way); raises as the bus's ``end_offsets`` does
        (``TimeoutError`` after ``timeout_s``)."""
        age = time.monotonic() - self._read_at
        if self._ends is not None and age < self._max_age_s:
            return self._ends
        if self._reading is None:
            self._reading = asyncio.create_task(self._read())
            # A background read's failure is no one's to raise: the next caller reads.
            self._reading.add_done_callback(_consume_failure)
        if self._ends is not None and age < STALE_S:
            return self._ends
        # Shielded: a caller that gives up does not cancel the others' read.
        return await asyncio.shield(self._reading)

    async def _read(self) -> dict[int, int]:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._timeout_s):
                ends = await self._bus.end_offsets(self._topic)
        finally:
            self._reading = None
        # Aged from when the read began: what it returns is at least that new.
        self._ends, self._read_at = ends, started
        return ends


def _consume_failure(task: asyncio.Task[dict[int, int]]) -> None:
    if not task.cancelled():
        task.exception()
