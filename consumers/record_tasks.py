"""The records a worker runs now, each in a task of its own, at most ``concurrency`` at
once: a slot is taken before a record is let in, and given back when its task ends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

from amplify_stream.bus.base import Record, TopicPartition
from producers.lease import PartitionLost


class RecordTasks:
    def __init__(self, concurrency: int, finished: Callable[[Record], None]) -> None:
        """``finished(record)`` when a task ends that was neither cancelled nor handed
        over (``PartitionLost``): its offset may be committed."""
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: dict[asyncio.Task[None], Record] = {}
        self._finished = finished

    async def room(self) -> None:
        """Until a slot is free (without taking it)."""
        await self._slots.acquire()
        self._slots.release()

    async def take_slot(self) -> None:
        await self._slots.acquire()

    def give_back_slot(self) -> None:
        """A slot taken for a record that will not run."""
        self._slots.release()

    def start(self, record: Record, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``work`` for ``record`` in the slot taken for it."""
        task = asyncio.create_task(work, name=name)
        self._tasks[task] = record
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        record = self._tasks.pop(task)
        self._slots.release()
        if task.cancelled() or isinstance(task.exception(), PartitionLost):
            return  # handed back: not finished, so its offset is not committed
        self._finished(record)

    async def settle(self, grace_s: float) -> None:
        """Until every task has ended, or ``grace_s`` has passed."""
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace_s):
                    await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def hand_back(self, partitions: set[TopicPartition] | None) -> None:
        """Cancel the work of ``partitions`` (of all, with None): it is not finished here."""
        tasks = [
            t
            for t, r in self._tasks.items()
            if partitions is None or TopicPartition(r.topic, r.partition) in partitions
        ]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
