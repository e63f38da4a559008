"""The relay: one reader of the whole stream topic per gateway, fanned out to the sockets
that watch each key (a story's id, or a live document's), plus catch-up from any cursor
for clients that come back to a story.

Routing uses the record key and the headers only: the relay never parses JSON, it
splices the cursor into the bytes (``events.with_cursor``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from amplify_stream.bus.base import Bus, Record
from amplify_stream.errors import CursorExpired
from amplify_stream.events import ATTEMPT_HEADER, EVENT_TYPE_HEADER, TERMINAL_EVENT

log = logging.getLogger(__name__)

_TERMINAL = TERMINAL_EVENT.encode()
_STARTS = (b"enhancement.started", b"audio.started")


class Subscription:
    """Live records of one key, buffered for one watcher.

    A watcher that falls ``limit`` records behind is marked overflowed rather than
    holding the relay back; it catches up (a story's from the bus by cursor, a document's
    by reopening it), so nothing is lost.
    """

    def __init__(self, key: str, limit: int, *, live: bool = False) -> None:
        self.key = key
        self.queue: asyncio.Queue[Record] = asyncio.Queue(limit)
        self.overflowed = False
        # Made while the hub's reader was running: every record written from then on
        # reaches this queue (or the reader fails, and marks it overflowed).
        self.live = live

    def offer(self, record: Record) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(record)
        except asyncio.QueueFull:
            self.overflowed = True


def is_terminal(record: Record) -> bool:
    return record.header(EVENT_TYPE_HEADER) == _TERMINAL


class Superseded:
    """Tells the records of an attempt older than one already relayed for the story (a
    worker that lost the story may have had some in flight when it froze), and a second
    start of an attempt already started (its start was in flight when it froze, so the
    new owner numbered its own the same). The client drops the first kind anyway (their
    ``attempt``); the relay spares it both. Workers do not rely on it."""

    def __init__(self) -> None:
        self._newest: dict[bytes, int] = {}
        self._started: set[bytes] = set()

    def __call__(self, record: Record) -> bool:
        value = record.header(ATTEMPT_HEADER)
        if value is None:
            return False
        stage, _, number = value.rpartition(b":")
        attempt = int(number)
        if attempt < self._newest.get(stage, 0):
            return True
        self._newest[stage] = attempt
        if record.header(EVENT_TYPE_HEADER) in _STARTS:
            if value in self._started:
                return True
            self._started.add(value)
        return False


class RelayHub:
    def __init__(self, bus: Bus, topic: str, *, queue_limit: int = 4096) -> None:
        self._bus = bus
        self._topic = topic
        self._queue_limit = queue_limit
        self._subscribers: dict[str, set[Subscription]] = {}  # by key
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="relay-hub")
        # Live from here on: whatever is written after start() returns reaches watchers.
        ready = asyncio.create_task(self._ready.wait())
        done, _ = await asyncio.wait({ready, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if self._task in done:
            ready.cancel()
            self._task.result()  # raises what stopped the reader

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                async with self._bus.read(self._topic, "end") as records:
                    self._ready.set()
                    async for record in records:
                        for sub in self._subscribers.get(record.key, ()):
                            sub.offer(record)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Watchers recover by cursor; the reader comes back on its own.
                self._ready.clear()
                log.exception("stream relay reader failed; restarting")
                for subs in self._subscribers.values():
                    for sub in subs:
                        sub.overflowed = True
                await asyncio.sleep(1)

    def subscribe(self, key: str) -> Subscription:
        sub = Subscription(key, self._queue_limit, live=self._ready.is_set())
        self._subscribers.setdefault(key, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subscribers.get(sub.key)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subscribers[sub.key]

    async def follow(
        self, key: str, partition: int, after: int, sub: Subscription | None = None
    ) -> AsyncIterator[Record]:
        """Every record of ``key`` in ``partition`` with an offset above ``after``, exactly
        once and in order, from the log and then live, through ``story.completed`` (a
        story's: its key is the story id).

        Pass ``sub`` when the caller subscribed before producing the key's first record:
        then, if the hub's reader was running, the key has no history to read yet.
        """
        # Reading the log costs a consumer of its own; a key subscribed to before its
        # first record, while the reader ran, has everything coming through the queue.
        skip_history = sub is not None and sub.live
        sub = sub or self.subscribe(key)
        superseded = Superseded()
        last = after
        try:
            while True:
                # History first: everything up to the end of the log now. The live
                # queue holds what the hub dispatches from here on; offsets dedupe.
                if skip_history:
                    skip_history = False
                    end = 0
                else:
                    end = (await self._bus.end_offsets(self._topic)).get(partition, 0)
                if last + 1 < end:
                    async for record in self._history(key, partition, last + 1, end):
                        last = record.offset
                        if superseded(record):
                            continue
                        yield record
                        if is_terminal(record):
                            return
                while not sub.overflowed:
                    record = await sub.queue.get()
                    if record.offset <= last:
                        continue
                    last = record.offset
                    if superseded(record):
                        continue
                    yield record
                    if is_terminal(record):
                        return
                # Fell behind: start over from the log with a fresh subscription.
                self.unsubscribe(sub)
                sub = self.subscribe(key)
        finally:
            self.unsubscribe(sub)

    async def _history(
        self, key: str, partition: int, start: int, end: int
    ) -> AsyncIterator[Record]:
        oldest = (await self._bus.begin_offsets(self._topic)).get(partition, 0)
        if start < oldest:
            raise CursorExpired("the events after this cursor are past retention")
        async with self._bus.read(self._topic, {partition: start}) as records:
            async for record in records:
                if record.key == key:
                    yield record
                if record.offset >= end - 1:
                    return
