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
again after any failure, with the same transactional id, so the coordinator fences the
old session: a record of it still on its way can never join a later commit (the hanging
transaction that Kafka's transaction protocol before KIP-890 allows).

One window is left: the commit was sent and its answer did not come. Then the outcome is
the coordinator's, and this waits for it (aiokafka sends the commit again until the
coordinator answers) up to ``commit_wait_s``; past that the command is refused as
``OutcomeUnknown``, logged and counted.

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

from amplify_stream.bus.base import BusFenced, Headers, Position, Producer

log = logging.getLogger(__name__)

# The commit is sent at the latest this long before the earliest deadline of its batch.
COMMIT_MARGIN_S = 0.05
# A command with less time left than this when a batch is made is refused rather than
# taken into it: its deadline would cut short the batch of the others.
MIN_TIME_LEFT_S = 0.1


class NotPublished(Exception):
    """The command is not on the bus and never will be."""


class OutcomeUnknown(NotPublished):
    """The commit was sent and not answered within ``commit_wait_s``: the coordinator
    decides. Refused all the same (the caller retries); logged and counted as rare."""


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
    def __init__(self, producers: Sequence[Producer], *, commit_wait_s: float) -> None:
        """``producers``: transactional, each with an id of its own."""
        self._producers = list(producers)
        self._commit_wait_s = commit_wait_s
        self._queue: list[_Command] = []
        self._arrived = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.unknown = 0  # commits whose outcome this never learned (for the metrics)
        self.refused = 0  # commands not published (bus down, timed out)

    async def start(self) -> None:
        await asyncio.gather(*(producer.start() for producer in self._producers))
        self._tasks = [
            asyncio.create_task(self._run(producer), name=f"command-publisher-{i}")
            for i, producer in enumerate(self._producers)
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for command in self._queue:
            _refuse(command, NotPublished("the gateway is stopping"))
        self._queue.clear()
        for producer in self._producers:
            with contextlib.suppress(Exception):
                await producer.stop()

    async def publish(
        self, topic: str, key: str, value: bytes, headers: Headers, *, timeout_s: float
    ) -> Position:
        """The command's position once committed. Raises ``NotPublished`` when it was not,
        within ``timeout_s`` (or, if its commit was sent by then, once the coordinator
        has answered, up to ``commit_wait_s`` more)."""
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

    async def _run(self, producer: Producer) -> None:
        while True:
            await self._arrived.wait()
            self._arrived.clear()  # the first producer free takes everything queued
            now = asyncio.get_running_loop().time()
            batch: list[_Command] = []
            late: list[_Command] = []
            for command in self._queue:
                (batch if command.deadline - now >= MIN_TIME_LEFT_S else late).append(command)
            self._queue.clear()
            self._refuse_all(late, NotPublished("the bus did not take the command in time"))
            if batch:
                await self._commit(producer, batch)

    async def _commit(self, producer: Producer, batch: list[_Command]) -> None:
        """One transaction for ``batch``; every command of it gets its verdict."""
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
                            positions = await asyncio.gather(*sent)
                    except BaseException as exc:
                        self._refuse_all(batch, exc)  # before the abort, which may wait
                        raise
                    committing = True
        except asyncio.CancelledError:
            self._refuse_all(batch, NotPublished("the gateway is stopping"))
            raise
        except BaseException as exc:
            if committing and not isinstance(exc, BusFenced):
                self.unknown += 1
                log.error(
                    "a commit of %d command(s) was not answered in time: the coordinator "
                    "decides; refused (%r)",
                    len(batch),
                    exc,
                )
                self._refuse_all(batch, OutcomeUnknown(f"the commit was not answered: {exc!r}"))
            else:
                self._refuse_all(batch, exc)
            await self._renew(producer)
            return
        for command, position in zip(batch, positions, strict=True):
            if not command.verdict.done():
                command.verdict.set_result(position)

    def _refuse_all(self, batch: list[_Command], exc: BaseException) -> None:
        reason = exc if isinstance(exc, NotPublished) else NotPublished(repr(exc))
        for command in batch:
            if not command.verdict.done():
                self.refused += 1
                _refuse(command, reason)

    async def _renew(self, producer: Producer) -> None:
        """Start the producer again (same transactional id): the coordinator fences the
        old session and ends what it left open before the new one may write. Tried until
        it works; commands meanwhile wait in the queue until their deadline."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self._commit_wait_s):
                await producer.stop()
        while True:
            try:
                await producer.start()
                return
            except Exception as exc:
                log.warning("the command producer did not start again (%r); retrying", exc)
                await asyncio.sleep(1.0)


def _time_left(batch: list[_Command]) -> float:
    return max(0.0, min(c.deadline for c in batch) - asyncio.get_running_loop().time())


def _refuse(command: _Command, reason: BaseException) -> None:
    if not command.verdict.done():
        command.verdict.set_exception(reason)
        command.verdict.exception()  # retrieved: the caller may be gone
