"""The end offsets of a topic as read lately, for the start of a new story's history.

A story's events start after the end offsets read before its command is produced. Any
end offset read earlier is at or below the later one, so a reading that is a little old
is still a correct start: it only makes a later catch-up read (a cursor's, the worker's
outcome history) go over a little more of the log. Read per story it cost a ListOffsets
round trip to the broker for each topic and each story (by profile, the broker's and the
gateway's CPU); here a reading serves every story for ``max_age_s``, and concurrent
callers share one read.

Past that age every caller waits for the next read (shared), never going on with an old
reading: while the bus is down, stories are refused (503) before anything is produced.
Produced into a producer that cannot reach the broker, their records would wait in it,
and clog it after the broker is back (serving old readings meanwhile left the gateway
refusing every story for seconds after a broker restart: tests/faults/test_broker_outage).
"""

from __future__ import annotations

import asyncio
import time

from amplify_stream.bus.base import Bus


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
        """Partition -> end offset, read at most ``max_age_s`` ago; raises as the bus's
        ``end_offsets`` does (``TimeoutError`` after ``timeout_s``)."""
        if self._ends is not None and time.monotonic() - self._read_at < self._max_age_s:
            return self._ends
        if self._reading is None:
            self._reading = asyncio.create_task(self._read())
            # Raised to its callers; retrieved here too, for when every caller gave up.
            self._reading.add_done_callback(_consume_failure)
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
