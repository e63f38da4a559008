"""Outcome transactions are shared by the stories that finish together."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager

from amplify_stream.bus.base import Headers, Position, Producer, TopicPartition
from amplify_stream.events import StoryCompletedOutcome, StoryTimings
from producers.outcomes import OutcomePublisher


class RecordingProducer(Producer):
    """Counts transactions; fails the first commit when asked to."""

    def __init__(self, fail_first: bool = False) -> None:
        self.transactions: list[list[str]] = []
        self._fail_first = fail_first
        self._open: list[str] | None = None

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def flush(self) -> None: ...

    async def send(
        self, topic: str, key: str, value: bytes, headers: Headers = ()
    ) -> Awaitable[Position]:
        assert self._open is not None, "outcomes are only sent inside a transaction"
        self._open.append(key)
        future: asyncio.Future[Position] = asyncio.get_running_loop().create_future()
        future.set_result(Position(topic, 0, 0))
        return future

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        self._open = []
        await asyncio.sleep(0.01)  # a commit takes a while: others finish meanwhile
        yield
        if self._fail_first:
            self._fail_first = False
            self._open = None
            raise ConnectionError("commit failed")
        self.transactions.append(self._open)
        self._open = None

    async def send_offsets_to_transaction(
        self, offsets: dict[TopicPartition, int], group_id: str
    ) -> None: ...


def done(story_id: str) -> StoryCompletedOutcome:
    return StoryCompletedOutcome(
        story_id=story_id,
        user_id="u",
        attempt=1,
        status="completed",
        timings=StoryTimings(total_ms=1),
    )


async def test_stories_finishing_together_share_transactions() -> None:
    producer = RecordingProducer()
    publisher = OutcomePublisher(producer, "outcomes")
    await asyncio.gather(*(publisher.publish([done(f"s{i}")]) for i in range(20)))
    committed = [key for txn in producer.transactions for key in txn]
    assert sorted(committed) == sorted(f"s{i}" for i in range(20))
    assert len(producer.transactions) < 20  # grouped


async def test_an_aborted_batch_is_retried_by_the_others() -> None:
    producer = RecordingProducer(fail_first=True)
    publisher = OutcomePublisher(producer, "outcomes")
    results = await asyncio.gather(
        *(publisher.publish([done(f"s{i}")]) for i in range(5)), return_exceptions=True
    )
    failed = [r for r in results if isinstance(r, Exception)]
    assert len(failed) == 1  # the leader of the aborted batch hears of it
    committed = [key for txn in producer.transactions for key in txn]
    assert len(committed) == 4 and len(set(committed)) == 4
