"""The relay: one reader of the stream topic per gateway, over the partitions it serves
(``RelayHub``), fanned out to the sockets that watch each key (a story's id, or a live
document's), plus catch-up from any cursor for clients that come back to a story.

Routing uses the record key and the headers only: the relay never parses JSON, it
splices the cursor into the bytes (``events.with_cursor``).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

from amplify_stream.bus.base import Bus, Record, Slices
from amplify_stream.bus.partitioner import partition_for_key, partition_of_new_key
from amplify_stream.errors import CursorExpired
from amplify_stream.events import ATTEMPT_HEADER, EVENT_TYPE_HEADER, TERMINAL_EVENT
from amplify_stream.gateway.relay_interest import LINGER_S, PartitionInterest
from amplify_stream.gateway.relay_reader import StreamReader

_TERMINAL = TERMINAL_EVENT.encode()
_STARTS = (b"enhancement.started", b"audio.started")


class Subscription:
    """Live records of one key, buffered for one watcher.

    A watcher that falls ``limit`` records behind is marked overflowed rather than
    holding the relay back; it catches up (a story's from the bus by cursor, a document's
    by reopening it), so nothing is lost.
    """

    def __init__(self, key: str, limit: int) -> None:
        self.key = key
        self.queue: asyncio.Queue[Record] = asyncio.Queue(limit)
        self.overflowed = False
        # Set by ``RelayHub.subscribe`` once the reader reads the key's partition: every
        # record written from then on reaches this queue (or it is marked overflowed).
        self.live = False

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
    """The gateway's one reader of the stream topic, over the partitions it needs.

    Kafka cannot filter by key at the broker: a reader pays for every record of every
    partition it reads. So a gateway reads only its home slice (its share of the stream
    topic among the gateways, ``Bus.slices``: the stories and documents it creates get
    ids whose key falls there, ``mint``) and the partitions its sockets watch a key of
    elsewhere (a story resumed here, a document opened on another gateway first). A
    partition nobody here watches any more is read on for ``linger_s``, so a socket that
    comes back does not restart the reader.

    One reader (``relay_reader.StreamReader``), not one per partition: when the set of
    partitions changes it starts again from the positions it reached, so none of its
    watchers misses a record.
    """

    def __init__(
        self,
        bus: Bus,
        topic: str,
        *,
        group_id: str | None = None,
        queue_limit: int = 4096,
        linger_s: float = LINGER_S,
        position_timeout_s: float = 5.0,
    ) -> None:
        self._bus = bus
        self._topic = topic
        self._group_id = group_id
        self._queue_limit = queue_limit
        self._position_timeout_s = position_timeout_s
        self._subscribers: dict[str, set[Subscription]] = {}  # by key
        self._partitions = 0
        self._slices: Slices | None = None
        self._interest = PartitionInterest(linger_s)
        self._reader = StreamReader(bus, topic, self._interest, self._dispatch, self._failed)
        self._task: asyncio.Task[None] | None = None

    @property
    def home(self) -> frozenset[int]:
        return self._interest.home

    @property
    def reading(self) -> frozenset[int]:
        return self._reader.reading

    @property
    def records_read(self) -> int:
        return self._reader.records_read

    @property
    def reader_starts(self) -> int:
        return self._reader.starts

    async def start(self) -> None:
        self._partitions = len(await self._bus.end_offsets(self._topic))
        if self._group_id is None:
            self._interest.set_home(frozenset(range(self._partitions)))
        else:
            self._slices = self._bus.slices(self._topic, self._group_id, self._interest.set_home)
            await self._slices.start()
        self._task = asyncio.create_task(self._reader.run(), name="relay-hub")
        # Live from here on: whatever is written to the home slice after start() returns
        # reaches its watchers.
        positioned = asyncio.create_task(self._reader.positioned())
        try:
            await asyncio.wait({positioned, self._task}, return_when=asyncio.FIRST_COMPLETED)
            if self._task.done():
                self._task.result()  # raises what stopped the reader
        except BaseException:
            await self.stop()  # leaves the group, so its share is not held by no one
            raise
        finally:
            positioned.cancel()

    async def stop(self) -> None:
        if self._slices is not None:
            # Left first: the other gateways take this share (and its new stories) now.
            with contextlib.suppress(Exception):
                await self._slices.stop()
        self._interest.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def mint(self) -> str:
        """A new key (a story's or a document's id) whose stream records fall in the home
        slice: uuid4s drawn until one does, partitions / share of them on average."""
        home, partitions = self._interest.home, self._partitions
        while True:
            key = str(uuid.uuid4())
            if not home or partition_of_new_key(key, partitions) in home:
                return key

    def _dispatch(self, record: Record) -> None:
        for sub in self._subscribers.get(record.key, ()):
            sub.offer(record)

    def _failed(self) -> None:
        # Watchers recover by cursor; the reader comes back on its own.
        for subs in self._subscribers.values():
            for sub in subs:
                sub.overflowed = True

    async def subscribe(self, key: str) -> Subscription:
        """Watch ``key`` live. Returns once the reader is positioned on the key's
        partition, so a record written after this returns reaches the subscription
        (``live``). When the bus did not let the reader get there in time, the
        subscription comes back overflowed: what was written meanwhile may never reach
        its queue, so its watcher catches up as one that fell behind does."""
        partition = partition_for_key(key, self._partitions)
        sub = Subscription(key, self._queue_limit)
        self._subscribers.setdefault(key, set()).add(sub)
        if self._interest.watch(partition):
            self._interest.changed.set()
        try:
            sub.live = await self._reader.wait_reading(partition, self._position_timeout_s)
        except BaseException:
            self.unsubscribe(sub)  # a socket gone while it waited: its partition may go
            raise
        sub.overflowed = not sub.live
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subscribers.get(sub.key)
        if subs is None or sub not in subs:
            return
        subs.discard(sub)
        if not subs:
            del self._subscribers[sub.key]
        self._interest.unwatch(partition_for_key(sub.key, self._partitions))

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
        sub = sub or await self.subscribe(key)
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
                sub = await self.subscribe(key)
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
