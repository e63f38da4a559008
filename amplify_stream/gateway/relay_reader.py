"""The relay's one reader of the stream topic (``StreamReader``): over the partitions its
``PartitionInterest`` wants, started over from the positions it reached whenever that set
changes, so none of its records is missed or read twice across a start over.

One consumer, not one per partition: a gateway watching keys everywhere would run N
fetch loops where it runs one, and the CPU per relayed word would grow with N."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from amplify_stream.bus.base import Bus, Record
from amplify_stream.gateway.relay_interest import PartitionInterest

log = logging.getLogger(__name__)

# After the reader failed (the bus away), before it starts again.
RETRY_S = 1.0


class StreamReader:
    def __init__(
        self,
        bus: Bus,
        topic: str,
        interest: PartitionInterest,
        dispatch: Callable[[Record], None],
        failed: Callable[[], None],
    ) -> None:
        self._bus = bus
        self._topic = topic
        self._interest = interest
        self._dispatch = dispatch
        self._failed = failed
        # The next offset of each partition it reads, and which those are once it is
        # positioned there (empty while it starts over or failed).
        self._positions: dict[int, int] = {}
        self.reading: frozenset[int] = frozenset()
        self._positioned = asyncio.Event()  # replaced at each new ``reading``
        self.records_read = 0
        self.starts = 0

    async def positioned(self) -> None:
        """Until the reader is next positioned on the partitions it wants."""
        await self._positioned.wait()

    async def wait_reading(self, partition: int, timeout_s: float) -> bool:
        """Whether the reader reads ``partition`` within ``timeout_s``."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while partition not in self.reading:
                    await self._positioned.wait()
        return partition in self.reading

    async def run(self) -> None:
        while True:
            self._interest.changed.clear()
            partitions = self._interest.wanted()
            reader = asyncio.create_task(self._read(partitions), name="relay-reader")
            try:
                await self._until_changed(reader, partitions)
            finally:
                reader.cancel()
                # Waited, not awaited: its end is read below, and a cancellation of
                # this task while it ends still ends this task.
                await asyncio.wait({reader})
            self.reading = frozenset()
            if reader.cancelled() or reader.exception() is None:
                continue  # started over for a new set of partitions
            log.error("stream relay reader failed; restarting", exc_info=reader.exception())
            self._failed()
            await asyncio.sleep(RETRY_S)

    async def _until_changed(self, reader: asyncio.Task[None], partitions: frozenset[int]) -> None:
        """Until the reader ends, or the partitions to read are no longer ``partitions``
        (a change that leaves them as they were, a rebalance giving the same slice back,
        does not start it over)."""
        while not reader.done():
            changed = asyncio.create_task(self._interest.changed.wait())
            try:
                await asyncio.wait({reader, changed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                changed.cancel()
            if self._interest.wanted() != partitions:
                return
            self._interest.changed.clear()

    async def _read(self, partitions: frozenset[int]) -> None:
        positions = {p: self._positions[p] for p in partitions if p in self._positions}
        if new := partitions - positions.keys():
            # A partition new to the reader starts at its end: its watchers subscribed
            # before anything they wait for was written.
            ends = await self._bus.end_offsets(self._topic)
            positions |= {p: ends.get(p, 0) for p in new}
        self._positions = positions
        async with self._bus.read(self._topic, positions) as records:
            self.starts += 1
            self.reading = partitions
            positioned, self._positioned = self._positioned, asyncio.Event()
            positioned.set()
            async for record in records:
                self.records_read += 1
                positions[record.partition] = record.offset + 1
                self._dispatch(record)
