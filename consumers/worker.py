"""The shared Worker base: what a kind of worker declares and may use (its contract);
``consumers/group_member.py`` runs it in its consumer group.

Each assigned partition is held through an ``Ownership`` (its lease, and for workers
that write outcomes its fenced transactional producer): work from a partition the worker
lost, to a revocation or while it was frozen, stops at its next write (``PartitionLost``)
and is not finished here; the partition's new owner runs it.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import TypeAdapter

from amplify_stream.bus import is_bus_error
from amplify_stream.bus.base import Bus, Producer, Record, TopicPartition
from amplify_stream.config import Settings
from amplify_stream.metrics import Metrics
from amplify_stream.retry import retry_with_backoff
from amplify_stream.topics import Topics
from consumers.group_member import GroupMember
from consumers.ownership import Ownership
from consumers.writes import StoryWrites
from producers.lease import PartitionLost
from producers.outcomes import OutcomePublisher

log = logging.getLogger(__name__)

# The backoff of work retried while the bus is away.
RETRY_INITIAL_S = 0.5
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
    """A member of the consumer group ``<topic prefix>.<role>`` that runs many records at
    once. ``GroupMember`` fetches, dispatches, commits and hands partitions over; this
    class is what a kind of worker declares and may use, and nothing else:

    Switches (``ClassVar``):
    - ``role``: names its group (and its tasks).
    - ``adapter``: decodes a record's value into ``E``; one it refuses is dead-lettered.
    - ``writes_outcomes`` (False): each owned partition gets its own fenced transactional
      producer of outcomes (``outcomes``).
    - ``commits_offsets`` (True): a record's offset is committed once it and those
      before it are finished. A worker whose state lives in memory (the document owner)
      commits its place itself, with the snapshots that hold that state.

    To write: ``handle(event, record)``, the work of one record. Raising marks it
    finished anyway (after logging): a story must end with an outcome, so handlers report
    their own failures. ``PartitionLost`` hands it over instead (not finished here).

    Hooks (each does nothing unless overridden):
    - ``on_assignment(partitions)``: assigned, their holds exist; nothing slow awaited.
    - ``ready_for(ownership)``: awaited before each record of the partition starts;
      False skips it. By default waits for the partition's fence.
    - ``on_handover(partitions)``: about to go (revoked, or stopping), still surely ours.
    - ``on_stop()``: last of the shutdown, after the group is left (even if that failed).

    To use (read only): ``bus``, ``stream_producer``, ``topics``, ``metrics``,
    ``group_id``; ``ownership_of(tp)``/``ownership(record)``, a held partition's
    ``Ownership``; ``outcomes(record)`` and ``writes(record, ...)``, where work writes;
    ``may_have_run(record)``; ``until_the_bus_answers(record, work)``;
    ``dead_letter(record, error)``. A subclass touches no private member of the base
    (``tests/unit/test_house_rules.py``)."""

    role: ClassVar[str]
    adapter: ClassVar[TypeAdapter[Any]]
    writes_outcomes: ClassVar[bool] = False
    commits_offsets: ClassVar[bool] = True

    def __init__(self, deps: WorkerDeps, consumes: str | list[str], *, concurrency: int) -> None:
        """``concurrency``: how many of the ``consumes`` topics' records run at once."""
        self._bus = deps.bus
        self.topics = deps.topics
        self.group_id = f"{deps.settings.topic_prefix}.{self.role}"
        self.metrics = deps.metrics or Metrics()
        self._stream_producer = deps.stream_producer
        topics = [consumes] if isinstance(consumes, str) else consumes
        grace_s = deps.settings.worker_shutdown_grace_s
        self._member = GroupMember(self, self._bus, topics, concurrency, grace_s)
        # Set once the worker has joined its group (``run``).
        self.ready = asyncio.Event()
        # The task running ``run`` (for liveness probes), once it runs.
        self.task: asyncio.Task[None] | None = None

    @abc.abstractmethod
    async def handle(self, event: E, record: Record) -> None:
        """Do the work of one record (see the class's contract)."""

    async def on_assignment(self, partitions: set[TopicPartition]) -> None:
        """The partitions were assigned (their ownerships exist). It must not await
        anything slow: start tasks, and let ``ready_for`` wait for them."""

    async def ready_for(self, owned: Ownership) -> bool:
        """Whether the partition's records may start (False: it was lost meanwhile). Its
        older producers are fenced first; a worker with state to load waits for it too."""
        return await owned.fenced()

    async def on_handover(self, partitions: set[TopicPartition]) -> None:
        """The partitions are about to go (revoked, or the worker stops), while they are
        still surely ours."""

    async def on_stop(self) -> None:
        """The worker has stopped: its tasks of its own are to be stopped now."""

    # ------------------------------------------------------------ for subclasses

    @property
    def bus(self) -> Bus:
        return self._bus

    @property
    def stream_producer(self) -> Producer:
        """The low-latency producer of the stream and segments topics."""
        if self._stream_producer is None:
            raise RuntimeError(f"{self.group_id} writes no stream")
        return self._stream_producer

    def ownership_of(self, tp: TopicPartition) -> Ownership:
        """This worker's hold on ``tp`` (``PartitionLost`` once gone)."""
        owned = self._member.partitions.get(tp)
        if owned is None or owned.lost:
            raise PartitionLost(f"{tp.topic}[{tp.partition}] is not ours any more")
        return owned

    def ownership(self, record: Record) -> Ownership:
        """This worker's hold on the record's partition (``PartitionLost`` once gone)."""
        return self.ownership_of(TopicPartition(record.topic, record.partition))

    def outcomes(self, record: Record) -> OutcomePublisher:
        """The outcome publisher of the record's partition (fenced: its own id)."""
        publisher = self.ownership(record).outcomes
        if publisher is None:
            raise RuntimeError(f"{self.group_id} writes no outcomes")
        return publisher

    def writes(self, record: Record, story_id: str, user_id: str) -> StoryWrites:
        """Where the work of ``record`` on ``story_id`` writes (``PartitionLost`` once the
        record's partition is gone)."""
        producer = self.stream_producer
        lease = self.ownership(record)
        outcomes = self.outcomes(record)
        return StoryWrites(producer, self.topics, lease, outcomes, story_id, user_id)

    def may_have_run(self, record: Record) -> bool:
        """True when this record may have been (partly) worked on before: it was fetched
        again after a rebalance or a restart, or its work is being retried."""
        return self._member.partitions.may_have_run(record)

    async def until_the_bus_answers(
        self, record: Record, work: Callable[[], Awaitable[None]]
    ) -> None:
        """Run ``work`` for ``record`` again, with backoff, for as long as it fails because
        the bus is away: the work is not done, so the record stays uncommitted. From the
        first failure on, the record counts as possibly run before (``may_have_run``).

        Handlers whose work outlives one call (the narrator's session, fed by later
        records) run their own retries through this, keeping what they were fed."""

        async def retrying(exc: Exception, delay: float) -> None:
            log.warning(
                "bus unavailable, retrying in %.1f s: %r",
                delay,
                exc,
                extra={"cursor": record.cursor},
            )
            self._member.partitions.retrying(record)

        try:
            await retry_with_backoff(
                work,
                retry_on=is_bus_error,
                first_delay_s=RETRY_INITIAL_S,
                max_delay_s=RETRY_MAX_S,
                on_retry=retrying,
            )
        finally:
            self._member.partitions.retried(record)

    async def dead_letter(self, record: Record, error: str) -> None:
        """Write ``record`` to the dead-letter topic (it counts as finished then)."""
        await self._member.dead_letters.send(record, error, self.ownership(record))

    def in_group(self) -> bool:
        """Whether the worker is surely a member of its group now (its lease holds): what
        a readiness probe of a worker process asks."""
        return self.ready.is_set() and self._member.in_group()

    async def run(self) -> None:
        """Take part in the group until cancelled (``GroupMember.run``)."""
        self.task = asyncio.current_task()
        await self._member.run()
