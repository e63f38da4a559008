"""Commands whose answer the caller must be able to trust: on the bus for good when
``publish`` returns, and never when it raises ``NotPublished``.

An idempotent producer cannot promise the second half. A record whose answer did not come
in time may still have been written (the broker took it and went down before answering,
or the record waited in the producer and went out once the broker was back), so a story
answered 503 could run later (issue 25: 10 of 225 submissions in one broker outage).

Here each command goes out in a transaction, and the decision is the commit, which is
sent only while every command of the batch is still wanted (before its deadline). A batch
that is not committed in time is refused at once and aborted, or left to the coordinator
to abort: read_committed consumers (the workers) never see it. The producer is started
again after any failure, with the same transactional id: its InitProducerId returns once
the coordinator has ended what the old session left open, and bumps the epoch, so a late
record of the old session is refused (brokers from 3.6 also check each transactional
write against the transaction's partitions, KIP-890's first part).

One window needs more: the commit was sent and its answer did not come (the broker went
away). The coordinator decides then, not this process. The command waits for the answer
up to ``commit_wait_s``, then for the producer to start again (which waits until the
coordinator has ended the transaction) and reads each record's position read_committed:
the log says whether it was committed, up to ``settle_s``. Only past that is a command
refused without knowing (``OutcomeUnknown``: logged, counted; the broker away for over a
minute just as its commit was on the way).

Group commit, as in ``producers/outcomes.py``: commands that arrive while a batch is being
committed go together in the next transaction. And several producers take turns: a
producer's next transaction cannot start until the coordinator has written the last
one's markers (``ConcurrentTransactions``, which aiokafka retries after 20 ms), so with
one producer under steady load every story would wait those 20 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from amplify_stream.bus.base import Bus, BusError, BusFenced, Headers, Position, Producer

log = logging.getLogger(__name__)

# The commit is sent at the latest this long before the earliest deadline of its batch.
COMMIT_MARGIN_S = 0.05
# A command with less time left than this when a batch is made is refused rather than
# taken into it: its deadline would cut short the batch of the others.
MIN_TIME_LEFT_S = 0.1


class NotPublished(Exception):
    """The command is not on the bus and never will be (``OutcomeUnknown`` aside)."""


class OutcomeUnknown(NotPublished):
    """The commit was sent, and neither its answer nor the log said within ``settle_s``
    what became of it: refused without knowing (it may run). Logged and counted."""


@dataclass(eq=False, slots=True)
class _Command:
    topic: str
    key: str
    value: bytes
    headers: Headers
    deadline: float  # loop time
    verdict: asyncio.Future[Position] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class CommandPublisher:
    def __init__(
        self,
        producers: Sequence[Producer],
        bus: Bus,
        *,
        commit_wait_s: float,
        settle_s: float,
    ) -> None:
        """``producers``: transactional, each with an id of its own. ``bus``: to read what
        became of a commit whose answer did not come within ``commit_wait_s``, for up to
        ``settle_s`` more."""
        self._producers = list(producers)
        self._bus = bus
        self._commit_wait_s = commit_wait_s
        self._settle_s = settle_s
        self._queue: list[_Command] = []
        self._arrived = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self.renewing: set[int] = set()  # producers starting again (for the metrics)
        self.refused = 0  # commands not published (bus down, timed out)
        self.settled = 0  # commits whose answer did not come, learned from the log
        self.unknown = 0  # commands refused though their commit went out (never learned)

    async def start(self) -> None:
        try:
            await asyncio.gather(*(producer.start() for producer in self._producers))
        except BaseException:
            await self._stop_producers()
            raise
        self._tasks = [
            asyncio.create_task(self._run(i), name=f"command-publisher-{i}")
            for i in range(len(self._producers))
        ]

    async def stop(self) -> None:
        """Take no more batches, let the ones under way end (each gives its commands their
        verdicts, bounded), then stop the producers."""
        self._closing = True
        self._refuse_all(self._queue, NotPublished("the gateway is stopping"))
        self._queue.clear()
        self._arrived.set()  # the idle loops wake, and end
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=self._commit_wait_s + self._settle_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._stop_producers()

    async def _stop_producers(self) -> None:
        for producer in self._producers:
            with contextlib.suppress(Exception):
                await producer.stop()

    async def publish(
        self, topic: str, key: str, value: bytes, headers: Headers, *, timeout_s: float
    ) -> Position:
        """The command's position once committed. Raises ``NotPublished`` when it was not
        within ``timeout_s``; a command whose commit went out by then waits for its
        outcome (up to ``commit_wait_s``, then ``settle_s`` to read it from the log)."""
        if self._closing:
            raise NotPublished("the gateway is stopping")
        loop = asyncio.get_running_loop()
        command = _Command(topic, key, value, headers, loop.time() + timeout_s)
        self._queue.append(command)
        self._arrived.set()
        try:
            async with asyncio.timeout_at(command.deadline):
                return await asyncio.shield(command.verdict)
        except TimeoutError:
            if command in self._queue:  # never taken into a batch: never sent
                self._queue.remove(command)
                self.refused += 1
                raise NotPublished("the bus did not take the command in time") from None
            return await command.verdict  # in a batch, whose verdict is due
        finally:
            # The caller gone while it waited: a command not yet taken is never sent.
            if command in self._queue:
                self._queue.remove(command)

    async def _run(self, index: int) -> None:
        while not self._closing:
            await self._arrived.wait()
            self._arrived.clear()  # the first producer free takes everything queued
            if self._closing:
                return
            now = asyncio.get_running_loop().time()
            batch: list[_Command] = []
            late: list[_Command] = []
            for command in self._queue:
                (batch if command.deadline - now >= MIN_TIME_LEFT_S else late).append(command)
            self._queue.clear()
            self._refuse_all(late, NotPublished("the bus did not take the command in time"))
            if batch:
                await self._commit(index, batch)

    async def _commit(self, index: int, batch: list[_Command]) -> None:
        """One transaction for ``batch``; every command of it gets its verdict."""
        producer = self._producers[index]
        positions: list[Position] = []
        committing = False
        try:
            async with asyncio.timeout(self._commit_wait_s + _time_left(batch)):
                async with producer.transaction():
                    try:
                        # The commit is sent only while every command is still wanted.
                        deadline = min(c.deadline for c in batch) - COMMIT_MARGIN_S
                        async with asyncio.timeout_at(deadline):
                            sent = [
                                await producer.send(c.topic, c.key, c.value, c.headers)
                                for c in batch
                            ]
                            # Every record acknowledged before the commit (a refused one
                            # does not fail the commit by itself).
                            positions = list(await asyncio.gather(*sent))
                    except BaseException as exc:
                        self._refuse_all(batch, exc)  # before the abort, which may wait
                        raise
                    committing = True
        except asyncio.CancelledError:
            # Stopping, past the wait stop() allows: the commit's outcome is not learned.
            if committing:
                self._unknown(batch, "the gateway stopped while its commit was unanswered")
            self._refuse_all(batch, NotPublished("the gateway is stopping"))
            raise
        except BaseException as exc:
            if committing and not isinstance(exc, BusFenced):
                # The commit went out and its answer did not come: the coordinator
                # decides, and the log says what it decided.
                await self._settle(index, batch, positions, exc)
            else:
                self._refuse_all(batch, exc)
                await self._renew(index)
            return
        for command, position in zip(batch, positions, strict=True):
            if not command.verdict.done():
                command.verdict.set_result(position)

    async def _settle(
        self, index: int, batch: list[_Command], positions: list[Position], exc: BaseException
    ) -> None:
        """The verdicts of a commit sent and not answered. Starting the producer again
        (its InitProducerId) returns once the coordinator has ended the transaction,
        committed or aborted (aborting it if the commit never arrived); then a
        read_committed read at each record's position says which."""
        log.warning("a commit of %d command(s) was not answered (%r): settling", len(batch), exc)
        try:
            async with asyncio.timeout(self._settle_s):
                await self._renew(index)
                for command, position in zip(batch, positions, strict=True):
                    if await visible_to_workers(self._bus, position):
                        command.verdict.set_result(position)
                    else:
                        self._refuse_all([command], NotPublished("its transaction was aborted"))
            self.settled += 1
        except TimeoutError:
            self._unknown(batch, f"the commit was not answered, nor learned: {exc!r}")
            await self._renew(index)

    def _unknown(self, batch: list[_Command], why: str) -> None:
        pending = [c for c in batch if not c.verdict.done()]
        self.unknown += len(pending)
        log.error("%d story command(s) refused, their outcome unknown: %s", len(pending), why)
        self._refuse_all(pending, OutcomeUnknown(why))

    def _refuse_all(self, batch: list[_Command], exc: BaseException) -> None:
        reason = exc if isinstance(exc, NotPublished) else NotPublished(repr(exc))
        for command in batch:
            if not command.verdict.done():
                self.refused += 1
                _refuse(command, reason)

    async def _renew(self, index: int) -> None:
        """Start the producer again (same transactional id): the coordinator ends what
        the old session left open before the new one may write, and fences it. Tried
        until it works (each attempt bounded); commands meanwhile go to the others, or
        wait in the queue until their deadline."""
        producer = self._producers[index]
        self.renewing.add(index)
        try:
            with contextlib.suppress(Exception):
                await producer.stop()  # bounded: KafkaProducer's stop of a transactional one
            while True:
                try:
                    async with asyncio.timeout(self._commit_wait_s):
                        await producer.start()
                    return
                except Exception as exc:
                    log.warning(
                        "story command producer %d did not start (%r); retrying", index, exc
                    )
                    with contextlib.suppress(Exception):
                        await producer.stop()
                    await asyncio.sleep(1.0)
        finally:
            self.renewing.discard(index)


async def visible_to_workers(bus: Bus, position: Position) -> bool:
    """Whether a worker (read_committed) sees the record at ``position``. The read waits
    until no transaction holds it back, and is tried again while the bus is away."""
    while True:
        try:
            found = await bus.read_range(
                position.topic,
                position.partition,
                position.offset,
                position.offset + 1,
                isolation="read_committed",
            )
            return any(r.offset == position.offset for r in found)
        except BusError:
            await asyncio.sleep(0.5)


def _time_left(batch: list[_Command]) -> float:
    return max(0.0, min(c.deadline for c in batch) - asyncio.get_running_loop().time())


def _refuse(command: _Command, reason: BaseException) -> None:
    if not command.verdict.done():
        command.verdict.set_exception(reason)
        command.verdict.exception()  # retrieved: the caller may be gone
