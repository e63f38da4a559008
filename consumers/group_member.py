"""How a worker takes part in its consumer group: it fetches, runs each record in a task
of its own (at most ``concurrency`` at once), commits what is finished, reports its lag,
and on a rebalance or at shutdown hands unfinished work back. The worker's own contract
(its switches and hooks, called from here) is ``consumers/worker.py``.

At-least-once: an offset is committed only when every record before it in that
partition is finished, so a crash replays unfinished stories and never skips one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from pydantic import TypeAdapter, ValidationError

from amplify_stream.bus import is_bus_error
from amplify_stream.bus.base import Bus, GroupConsumer, Record, TopicPartition
from amplify_stream.logs import story_id_var
from amplify_stream.metrics import Metrics
from amplify_stream.topics import Topics
from consumers.dead_letters import DeadLetters
from consumers.ownership import Ownership, OwnershipEvent, transactional_id
from consumers.partitions import Partitions
from consumers.record_tasks import RecordTasks
from producers.lease import PartitionLost
from producers.outcomes import OutcomePublisher

log = logging.getLogger(__name__)

LAG_REPORT_S = 5.0
# How long a poll waits for records when there are none. Records end the wait at once; the
# wait only paces an idle worker's loop, and the commit of work finished meanwhile.
POLL_WAIT_MS = 500


class Contract(Protocol):
    """What the member calls of its worker: the ``Worker`` contract (consumers/worker.py),
    named here so that this module needs nothing of that one."""

    group_id: str
    topics: Topics
    metrics: Metrics
    ready: asyncio.Event

    @property
    def adapter(self) -> TypeAdapter[Any]: ...
    @property
    def writes_outcomes(self) -> bool: ...
    @property
    def commits_offsets(self) -> bool: ...

    async def handle(self, event: Any, record: Record) -> None: ...
    async def on_assignment(self, partitions: set[TopicPartition]) -> None: ...
    async def ready_for(self, owned: Ownership) -> bool: ...
    async def on_handover(self, partitions: set[TopicPartition]) -> None: ...
    async def on_stop(self) -> None: ...
    async def dead_letter(self, record: Record, error: str) -> None: ...
    async def until_the_bus_answers(
        self, record: Record, work: Callable[[], Awaitable[None]]
    ) -> None: ...


class GroupMember:
    """Runs one worker in its group; calls only the worker's contract (its hooks)."""

    def __init__(
        self, worker: Contract, bus: Bus, consumes: list[str], concurrency: int, grace_s: float
    ) -> None:
        self._worker = worker
        self._bus = bus
        self._consumes = consumes
        self._grace_s = grace_s
        self._consumer: GroupConsumer | None = None
        self.partitions = Partitions()
        self._running = RecordTasks(concurrency, self.partitions.finished)
        self.dead_letters = DeadLetters(bus, worker.topics.dlq, f"{worker.group_id}-dlq")

    def in_group(self) -> bool:
        """Whether the member is surely in its group now (its lease holds)."""
        return self._consumer is not None and self._consumer.membership.certain()

    async def run(self) -> None:
        worker = self._worker
        await self.dead_letters.start()
        next_lag_report = 0.0
        self._consumer = self._bus.group_consumer(
            self._consumes,
            worker.group_id,
            on_assigned=self._on_assigned,
            on_revoked=self._on_revoked,
            client_id=worker.group_id,
        )
        await self._consumer.start()
        worker.ready.set()
        try:
            while True:
                await self._running.room()
                records = await self._consumer.getmany(timeout_ms=POLL_WAIT_MS, max_records=64)
                # The assignment the records were fetched under. One that ends while they
                # wait for a slot (a rebalance runs beside this loop) takes its records
                # with it: the partition's next assignment, maybe to this worker again,
                # starts over from the committed offset and fetches them anew.
                owners = self.partitions.owned()
                for record in records:
                    tp = TopicPartition(record.topic, record.partition)
                    await self._running.take_slot()
                    owned = owners.get(tp)
                    # Before a partition's first record: its older producers fenced, so
                    # a zombie's outcome has landed (and shows in the history) or never
                    # will. Awaited here, so the partition's records start in order.
                    if (
                        owned is None
                        or not await worker.ready_for(owned)
                        or self.partitions.get(tp) is not owned
                    ):
                        self._running.give_back_slot()
                        continue
                    self.partitions.started(record)
                    name = f"{worker.group_id}:{record.cursor}"
                    self._running.start(record, self._process(record), name)
                await self._commit()
                if time.monotonic() >= next_lag_report:
                    next_lag_report = time.monotonic() + LAG_REPORT_S
                    await self._report_lag()
        finally:
            await asyncio.shield(self._shutdown())

    # ------------------------------------------------------------ records

    async def _process(self, record: Record) -> None:
        story_id_var.set(record.key or None)  # this task's context: its log lines
        try:
            await self._worker.until_the_bus_answers(record, lambda: self._work(record))
        except asyncio.CancelledError:
            raise
        except PartitionLost as exc:
            self.observe("handed_over")
            log.warning("handed over, not finished here: %s", exc, extra={"cursor": record.cursor})
            raise
        except Exception:
            log.exception("handler failed", extra={"cursor": record.cursor})

    async def _work(self, record: Record) -> None:
        if not record.value:
            return  # a tombstone (a deleted document's key): nothing to do
        worker = self._worker
        try:
            event = worker.adapter.validate_json(record.value)
        except ValidationError as exc:
            await worker.dead_letter(record, str(exc))
            return
        await worker.handle(event, record)

    def observe(self, event: OwnershipEvent) -> None:
        """Count what happened to a hold (``amplify_partition_ownership_events``)."""
        self._worker.metrics.ownership_events.labels(self._worker.group_id, event).inc()

    # ------------------------------------------------------------ offsets

    async def _commit(self, partitions: set[TopicPartition] | None = None) -> None:
        if not self._worker.commits_offsets:
            return
        offsets = self.partitions.take_commits(partitions)
        if offsets and self._consumer is not None:
            try:
                await self._consumer.commit(offsets)
            except Exception as exc:
                if not is_bus_error(exc):
                    raise
                # Try again with the next commit; until then a restart would only replay.
                log.warning("commit failed, will retry: %r", exc)
                self.partitions.commits_failed(offsets)

    async def _report_lag(self) -> None:
        """Records of each assigned partition not finished yet (fetched or not)."""
        if self._consumer is None:
            return
        lag = self._worker.metrics.consumer_lag
        try:
            for topic in {tp.topic for tp in self._consumer.assignment()}:
                ends = await self._bus.end_offsets(topic)
                for tp in self._consumer.assignment():
                    if tp.topic != topic:
                        continue
                    if (done_up_to := self.partitions.done_up_to(tp)) is not None:
                        lag.labels(self._worker.group_id, topic, str(tp.partition)).set(
                            max(0, ends.get(tp.partition, 0) - done_up_to)
                        )
        except Exception as exc:
            if not is_bus_error(exc):
                raise
            log.debug("lag not reported: %r", exc)

    # ------------------------------------------------------------ the group

    async def _on_assigned(self, partitions: set[TopicPartition]) -> None:
        # Whatever is already in these partitions may have been started by their
        # previous owner; only records past today's end are certainly new.
        log.info("assigned %s", sorted((tp.topic, tp.partition) for tp in partitions))
        assert self._consumer is not None
        worker = self._worker
        for tp in partitions:
            owned = Ownership(tp, self._consumer.membership, self.observe)
            self.partitions.assign(tp, owned)
            if worker.writes_outcomes:
                producer = self._bus.producer(
                    transactional_id=transactional_id(worker.group_id, tp),
                    client_id=f"{worker.group_id}-outcomes",
                )
                owned.fence(OutcomePublisher(producer, worker.topics.outcomes, owned))
        # Before any await: records of these partitions may be fetched from here on.
        await worker.on_assignment(partitions)
        for topic in {tp.topic for tp in partitions}:
            ends = await self._bus.end_offsets(topic)
            for tp in partitions:
                if tp.topic == topic:
                    self.partitions.replays_below(tp, ends.get(tp.partition, 0))

    async def _on_revoked(self, partitions: set[TopicPartition]) -> None:
        # Another member will own these: hand back unfinished work, keep what is done.
        # Lost first: work that is not stopped by the cancel (between two writes, say)
        # stops at its next one.
        if partitions:
            log.info("revoked %s", sorted((tp.topic, tp.partition) for tp in partitions))
            await self._worker.on_handover(partitions)
        self.partitions.lose(partitions)
        try:
            await self._running.hand_back(partitions)
            await self._commit(partitions)
        finally:
            for owned in self.partitions.release(partitions):
                await owned.close()

    async def _shutdown(self) -> None:
        """Finish what runs within the grace period, hand the rest back, leave the group;
        then the worker's ``on_stop``, whatever failed before it."""
        try:
            await self._leave()
        finally:
            await self._worker.on_stop()

    async def _leave(self) -> None:
        await self._running.settle(self._grace_s)
        if owned := self.partitions.owned():
            await self._worker.on_handover(set(owned))
        await self._running.hand_back(None)
        try:
            await self._commit()
        except Exception:
            log.exception("final commit failed; the unfinished records will be replayed")
        if self._consumer is not None:
            await self._consumer.stop()
        for ownership in self.partitions.release_all():
            await ownership.close()
        await self.dead_letters.stop()
