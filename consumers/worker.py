"""The shared Worker base: a consumer group member that runs many records at once.

At-least-once: an offset is committed only when every record before it in that
partition is finished, so a crash replays unfinished stories and never skips one.
Records that cannot be decoded go to the dead-letter topic and count as finished.

Each assigned partition is held through an ``Ownership`` (its lease, and for workers
that write outcomes its fenced transactional producer): work from a partition the worker
lost, to a revocation or while it was frozen, stops at its next write (``PartitionLost``)
and is not finished here; the partition's new owner runs it.
"""

from __future__ import annotations

import abc
import asyncio
import base64
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import TypeAdapter, ValidationError

from amplify_stream.bus import is_bus_error
from amplify_stream.bus.base import Bus, GroupConsumer, Producer, Record, TopicPartition
from amplify_stream.config import Settings
from amplify_stream.events import DeadLetter, encode, headers_for
from amplify_stream.logs import story_id_var
from amplify_stream.metrics import Metrics
from amplify_stream.topics import Topics
from consumers.ownership import Ownership, OwnershipEvent, transactional_id
from consumers.progress import PartitionProgress
from consumers.writes import StoryWrites
from producers.lease import PartitionLost
from producers.outcomes import OutcomePublisher

log = logging.getLogger(__name__)

RETRY_INITIAL_S = 0.5
LAG_REPORT_S = 5.0
# How long a poll waits for records when there are none. Records end the wait at once; the
# wait only paces an idle worker's loop, and the commit of work finished meanwhile.
POLL_WAIT_MS = 500
RETRY_MAX_S = 5.0

E = TypeVar("E")


@dataclass(frozen=True, slots=True)
class WorkerDeps:
    """What every worker is built with, whatever its role; each adds its own ports (the
    enhancement provider, speech, the store): ``Enhancer(deps, provider)``."""

    bus: Bus
    settings: Settings
    metrics: Metrics | None = None
    # The low-latency producer of the stream and segments topics (``consumers/runtime.py``
    # makes it); the projector writes to neither.
    stream_producer: Producer | None = None

    @property
    def topics(self) -> Topics:
        return Topics.from_settings(self.settings)


class Worker(abc.ABC, Generic[E]):
    """Subclasses declare their role, decode records into ``E`` and ``handle`` them; the
    base does the rest."""

    # Declared by each kind of worker. Its consumer group is ``<topic prefix>.<role>``.
    role: ClassVar[str]
    adapter: ClassVar[TypeAdapter[Any]]
    # Outcomes go through a transactional producer per owned partition.
    writes_outcomes: ClassVar[bool] = False
    # Whether the base commits a record's offset once it is finished. A worker whose
    # state lives in memory (the document owner) commits its place itself, with the
    # snapshots that hold that state.
    commits_offsets: ClassVar[bool] = True

    def __init__(self, deps: WorkerDeps, consumes: str | list[str], *, concurrency: int) -> None:
        """``concurrency``: how many of the ``consumes`` topics' records run at once."""
        settings = deps.settings
        self._bus = deps.bus
        self.topics = deps.topics
        self._consumes = consumes
        self.group_id = f"{settings.topic_prefix}.{self.role}"
        self.metrics = deps.metrics or Metrics()
        self._stream_producer = deps.stream_producer
        self._slots = asyncio.Semaphore(concurrency)
        self._grace_s = settings.worker_shutdown_grace_s
        self._progress: dict[TopicPartition, PartitionProgress] = {}
        self._tasks: dict[asyncio.Task[None], Record] = {}
        self._consumer: GroupConsumer | None = None
        self._dlq: Producer | None = None
        # Below these offsets, records may have been worked on by a member that is gone.
        self._replay_below: dict[TopicPartition, int] = {}
        self._retried: set[tuple[TopicPartition, int]] = set()
        self._fetched: dict[TopicPartition, int] = {}
        self._owned: dict[TopicPartition, Ownership] = {}
        self.ready = asyncio.Event()
        # The task running ``run`` (for liveness probes), once it runs.
        self.task: asyncio.Task[None] | None = None

    @abc.abstractmethod
    async def handle(self, event: E, record: Record) -> None:
        """Do the work of one record. Raising marks it finished anyway (after logging):
        a story must end with an outcome, so handlers report their own failures."""

    def in_group(self) -> bool:
        """Whether the worker is surely a member of its group now (its lease holds): what
        a readiness probe of a worker process asks."""
        consumer = self._consumer
        return self.ready.is_set() and consumer is not None and consumer.membership.certain()

    def _observe(self, event: OwnershipEvent) -> None:
        self.metrics.ownership_events.labels(self.group_id, event).inc()

    def ownership(self, record: Record) -> Ownership:
        """This worker's hold on the record's partition (``PartitionLost`` once gone)."""
        owned = self._owned.get(TopicPartition(record.topic, record.partition))
        if owned is None or owned.lost:
            raise PartitionLost(f"{record.topic}[{record.partition}] is not ours any more")
        return owned

    def outcomes(self, record: Record) -> OutcomePublisher:
        """The outcome publisher of the record's partition (fenced: its own id)."""
        publisher = self.ownership(record).outcomes
        if publisher is None:
            raise RuntimeError(f"{self.group_id} writes no outcomes")
        return publisher

    def writes(self, record: Record, story_id: str, user_id: str) -> StoryWrites:
        """Where the work of ``record`` on ``story_id`` writes (``PartitionLost`` once the
        record's partition is gone)."""
        if self._stream_producer is None:
            raise RuntimeError(f"{self.group_id} writes no stream")
        lease = self.ownership(record)
        outcomes = self.outcomes(record)
        return StoryWrites(self._stream_producer, self.topics, lease, outcomes, story_id, user_id)

    def may_have_run(self, record: Record) -> bool:
        """True when this record may have been (partly) worked on before: it was fetched
        again after a rebalance or a restart, or its work is being retried."""
        tp = TopicPartition(record.topic, record.partition)
        below = self._replay_below.get(tp)
        # No assignment seen for the partition (a listener that failed): assume the worst.
        return below is None or record.offset < below or (tp, record.offset) in self._retried

    async def run(self) -> None:
        self.task = asyncio.current_task()
        self._dlq = self._bus.producer(client_id=f"{self.group_id}-dlq")
        await self._dlq.start()
        next_lag_report = 0.0
        self._consumer = self._bus.group_consumer(
            [self._consumes] if isinstance(self._consumes, str) else self._consumes,
            self.group_id,
            on_assigned=self._on_assigned,
            on_revoked=self._on_revoked,
            client_id=self.group_id,
        )
        await self._consumer.start()
        self.ready.set()
        try:
            while True:
                await self._slots.acquire()
                self._slots.release()
                records = await self._consumer.getmany(timeout_ms=POLL_WAIT_MS, max_records=64)
                # The assignment the records were fetched under. One that ends while they
                # wait for a slot (a rebalance runs beside this loop) takes its records
                # with it: the partition's next assignment, maybe to this worker again,
                # starts over from the committed offset and fetches them anew.
                owners = dict(self._owned)
                for record in records:
                    tp = TopicPartition(record.topic, record.partition)
                    await self._slots.acquire()
                    owned = owners.get(tp)
                    # Before a partition's first record: its older producers fenced, so
                    # a zombie's outcome has landed (and shows in the history) or never
                    # will. Awaited here, so the partition's records start in order.
                    if (
                        owned is None
                        or not await self.ready_for(owned)
                        or self._owned.get(tp) is not owned
                    ):
                        self._slots.release()
                        continue
                    self._dispatch(record)
                    self._fetched[tp] = record.offset + 1
                await self._commit()
                if time.monotonic() >= next_lag_report:
                    next_lag_report = time.monotonic() + LAG_REPORT_S
                    await self._report_lag()
        finally:
            await asyncio.shield(self._shutdown())

    async def ready_for(self, owned: Ownership) -> bool:
        """Whether the partition's records may start (False: it was lost meanwhile). Its
        older producers are fenced first; a worker with state to load waits for it too."""
        return await owned.fenced()

    async def on_assignment(self, partitions: set[TopicPartition]) -> None:
        """A hook: the partitions were assigned (their ownerships exist). It must not
        await anything slow: start tasks, and let ``ready_for`` wait for them."""

    async def on_handover(self, partitions: set[TopicPartition]) -> None:
        """A hook: the partitions are about to go (revoked, or the worker stops), while
        they are still surely ours."""

    def _dispatch(self, record: Record) -> None:
        tp = TopicPartition(record.topic, record.partition)
        self._progress[tp].start(record.offset)
        task = asyncio.create_task(self._process(record), name=f"{self.group_id}:{record.cursor}")
        self._tasks[task] = record
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        record = self._tasks.pop(task)
        self._slots.release()
        if task.cancelled() or isinstance(task.exception(), PartitionLost):
            return  # handed back: not finished, so its offset is not committed
        progress = self._progress.get(TopicPartition(record.topic, record.partition))
        if progress is not None:
            progress.finish(record.offset)

    async def _process(self, record: Record) -> None:
        story_id_var.set(record.key or None)  # this task's context: its log lines
        try:
            await self.until_the_bus_answers(record, lambda: self._work(record))
        except asyncio.CancelledError:
            raise
        except PartitionLost as exc:
            self._observe("handed_over")
            log.warning("handed over, not finished here: %s", exc, extra={"cursor": record.cursor})
            raise
        except Exception:
            log.exception("handler failed", extra={"cursor": record.cursor})

    async def until_the_bus_answers(
        self, record: Record, work: Callable[[], Awaitable[None]]
    ) -> None:
        """Run ``work`` for ``record`` again, with backoff, for as long as it fails because
        the bus is away: the work is not done, so the record stays uncommitted. From the
        first failure on, the record counts as possibly run before (``may_have_run``).

        Handlers whose work outlives one call (the narrator's session, fed by later
        records) run their own retries through this, keeping what they were fed."""
        tp = TopicPartition(record.topic, record.partition)
        delay = RETRY_INITIAL_S
        try:
            while True:
                try:
                    await work()
                    return
                except Exception as exc:
                    if not is_bus_error(exc):
                        raise
                    log.warning(
                        "bus unavailable, retrying in %.1f s: %r",
                        delay,
                        exc,
                        extra={"cursor": record.cursor},
                    )
                    self._retried.add((tp, record.offset))
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX_S)
        finally:
            self._retried.discard((tp, record.offset))

    async def _work(self, record: Record) -> None:
        if not record.value:
            return  # a tombstone (a deleted document's key): nothing to do
        try:
            event: E = self.adapter.validate_json(record.value)
        except ValidationError as exc:
            await self._dead_letter(record, str(exc))
            return
        await self.handle(event, record)

    async def _dead_letter(self, record: Record, error: str) -> None:
        assert self._dlq is not None
        await self.ownership(record).hold()  # a zombie would letter it twice
        letter = DeadLetter(
            story_id=record.key or None,
            source_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            error=error[:2000],
            payload=base64.b64encode(record.value).decode(),
        )
        await self._dlq.send_and_wait(
            self.topics.dlq, record.key, encode(letter), headers_for(letter.type)
        )
        log.warning("record sent to the dead-letter topic", extra={"cursor": record.cursor})

    async def _commit(self, partitions: set[TopicPartition] | None = None) -> None:
        if not self.commits_offsets:
            return
        offsets: dict[TopicPartition, int] = {}
        for tp, progress in self._progress.items():
            if partitions is None or tp in partitions:
                offset = progress.take_commit()
                if offset is not None:
                    offsets[tp] = offset
        if offsets and self._consumer is not None:
            try:
                await self._consumer.commit(offsets)
            except Exception as exc:
                if not is_bus_error(exc):
                    raise
                # Try again with the next commit; until then a restart would only replay.
                log.warning("commit failed, will retry: %r", exc)
                for tp, offset in offsets.items():
                    if (pending := self._progress.get(tp)) is not None:
                        pending.retry_commit(offset)

    async def _hand_back(self, partitions: set[TopicPartition] | None) -> None:
        """Cancel the work of ``partitions`` (of all, with None): it is not finished here."""
        tasks = [
            t
            for t, r in self._tasks.items()
            if partitions is None or TopicPartition(r.topic, r.partition) in partitions
        ]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _report_lag(self) -> None:
        """Records of each assigned partition not finished yet (fetched or not)."""
        if self._consumer is None:
            return
        try:
            for topic in {tp.topic for tp in self._consumer.assignment()}:
                ends = await self._bus.end_offsets(topic)
                for tp in self._consumer.assignment():
                    if tp.topic != topic:
                        continue
                    progress = self._progress.get(tp)
                    low = progress.low_water() if progress else None
                    done_up_to = low if low is not None else self._fetched.get(tp)
                    if done_up_to is not None:
                        self.metrics.consumer_lag.labels(
                            self.group_id, topic, str(tp.partition)
                        ).set(max(0, ends.get(tp.partition, 0) - done_up_to))
        except Exception as exc:
            if not is_bus_error(exc):
                raise
            log.debug("lag not reported: %r", exc)

    async def _on_assigned(self, partitions: set[TopicPartition]) -> None:
        # Whatever is already in these partitions may have been started by their
        # previous owner; only records past today's end are certainly new.
        log.info("assigned %s", sorted((tp.topic, tp.partition) for tp in partitions))
        assert self._consumer is not None
        for tp in partitions:
            # A fresh start: records of an earlier assignment of it count for nothing.
            self._progress[tp] = PartitionProgress()
            owned = self._owned[tp] = Ownership(tp, self._consumer.membership, self._observe)
            if self.writes_outcomes:
                producer = self._bus.producer(
                    transactional_id=transactional_id(self.group_id, tp),
                    client_id=f"{self.group_id}-outcomes",
                )
                owned.fence(OutcomePublisher(producer, self.topics.outcomes, owned))
        # Before any await: records of these partitions may be fetched from here on.
        await self.on_assignment(partitions)
        for topic in {tp.topic for tp in partitions}:
            ends = await self._bus.end_offsets(topic)
            for tp in partitions:
                if tp.topic == topic:
                    self._replay_below[tp] = ends.get(tp.partition, 0)

    async def _on_revoked(self, partitions: set[TopicPartition]) -> None:
        # Another member will own these: hand back unfinished work, keep what is done.
        # Lost first: work that is not stopped by the cancel (between two writes, say)
        # stops at its next one.
        if partitions:
            log.info("revoked %s", sorted((tp.topic, tp.partition) for tp in partitions))
            await self.on_handover(partitions)
        for tp in partitions:
            if (owned := self._owned.get(tp)) is not None:
                owned.lose()
        try:
            await self._hand_back(partitions)
            await self._commit(partitions)
        finally:
            for tp in partitions:
                self._progress.pop(tp, None)
                if (owned := self._owned.pop(tp, None)) is not None:
                    await owned.close()

    async def _shutdown(self) -> None:
        """Finish what runs within the grace period, hand the rest back, leave the group."""
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._grace_s):
                    await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._owned:
            await self.on_handover(set(self._owned))
        await self._hand_back(None)
        try:
            await self._commit()
        except Exception:
            log.exception("final commit failed; the unfinished records will be replayed")
        if self._consumer is not None:
            await self._consumer.stop()
        owned, self._owned = list(self._owned.values()), {}
        for ownership in owned:
            await ownership.close()
        if self._dlq is not None:
            await self._dlq.stop()
