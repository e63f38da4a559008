"""Group commit for the store's hot statements: many callers, one statement.

Under load the cost of a statement is mostly per call, not per row: the trips through
the event loop and the driver's thread, a transaction, a commit (and for a write, the
engine's one turn of writers). ``Batched`` gathers the items that arrive while its
previous statement runs and gives them to the next one together. One task runs the
statements, so a batch's callers all wake at once when it is done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batched(Generic[T, R]):
    """``await batched(item)``: the result of ``run`` for ``item``, run with the items
    of other callers. ``run`` gives one result per item in order, an exception being
    that item's failure; an exception raised by ``run`` fails the whole batch."""

    def __init__(self, run: Callable[[list[T]], Awaitable[Sequence[R | Exception]]]) -> None:
        self._run = run
        self._queued: list[tuple[T, asyncio.Future[R]]] = []
        self._runner: asyncio.Task[None] | None = None

    async def __call__(self, item: T) -> R:
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queued.append((item, done))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run_queued())
        try:
            return await done
        except asyncio.CancelledError:
            # Not taken into a batch yet: now it never will be.
            done.cancel()
            raise

    async def _run_queued(self) -> None:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        try:
            while self._queued:
                batch = [(item, done) for item, done in self._queued if not done.done()]
                self._queued = []
                if batch:
                    await self._settle(batch)
        except BaseException:
            # Cancelled (the loop is closing): no caller waits for ever.
            for _, done in batch + self._queued:
                done.cancel()
            self._queued = []
            raise

    async def _settle(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._run([item for item, _ in batch])
        except Exception as exc:
            results = [exc] * len(batch)
        for (_, done), result in zip(batch, results, strict=True):
            if done.done():
                continue
            if isinstance(result, Exception):
                done.set_exception(result)
            else:
                done.set_result(result)
