"""What a document owner holds of one partition of the edit log while it owns it: the
core's documents (``PartitionDocuments``), the timers and tasks of their passes, its
checkpoints (snapshots, outcomes and its place in the log, in one fenced transaction),
and which documents have been idle long enough to leave memory (their snapshot is the
truth; ``DocumentLoads`` brings one back)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from amplify_stream.bus import is_bus_error
from amplify_stream.bus.base import Bus, Record, TopicPartition
from amplify_stream.documents.partition import PartitionDocuments, deleted_marker
from amplify_stream.events import SuggestionFeedbackOutcome, encode, headers_for
from amplify_stream.retry import retry_with_backoff
from amplify_stream.topics import Topics
from consumers.document_loads import DocumentLoads
from consumers.document_residency import Residency
from consumers.ownership import Ownership
from consumers.worker import RETRY_INITIAL_S, RETRY_MAX_S
from producers.lease import PartitionLost
from producers.outcomes import OutRecord

log = logging.getLogger(__name__)


@dataclass
class OwnedPartition:
    tp: TopicPartition
    ownership: Ownership
    docs: PartitionDocuments
    # Which documents are in memory, and when the idle ones leave.
    residency: Residency
    loading: asyncio.Task[None] | None = None
    checkpoints: asyncio.Task[None] | None = None
    committed: int | None = None
    timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    passes: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    # When each document's idle wait began (its last change), monotonic seconds.
    changed_at: dict[str, float] = field(default_factory=dict)
    # Told of the writers' decisions once their checkpoint is committed (the metrics).
    on_feedback: Callable[[SuggestionFeedbackOutcome], None] | None = None
    # Evicted documents being read back, and the commands waiting for them.
    loads: DocumentLoads | None = None
    _checkpointing: asyncio.Lock = field(default_factory=asyncio.Lock)

    def busy(self, doc_id: str) -> bool:
        """A pass is due or running on the document."""
        return doc_id in self.timers or doc_id in self.passes

    def stop_pass(self, doc_id: str) -> None:
        if (timer := self.timers.pop(doc_id, None)) is not None:
            timer.cancel()
        if (task := self.passes.pop(doc_id, None)) is not None:
            task.cancel()  # closes its provider stream; the document is untouched

    def stop_all(self) -> list[asyncio.Task[Any]]:
        tasks = [t for t in (self.loading, self.checkpoints) if t is not None]
        tasks += self.passes.values()
        if self.loads is not None:
            tasks += self.loads.stop()
        for doc_id in list(self.timers) + list(self.passes):
            self.stop_pass(doc_id)
        for task in tasks:
            task.cancel()
        return tasks

    async def checkpoint(self, topics: Topics, group_id: str) -> None:
        """What changed since the last checkpoint, and the place in the log that holds it,
        in one transaction of the partition's fenced producer (one at a time: the timer's
        and a writer's say may ask at once)."""
        async with self._checkpointing:
            await self._checkpoint(topics, group_id)

    async def durable(self, topics: Topics, group_id: str) -> bool:
        """A checkpoint now, tried again until it holds; False when the partition was lost
        meanwhile (its next owner folds the command again and answers it)."""

        async def not_yet(exc: Exception, delay: float) -> None:
            log.warning(
                "checkpoint for a writer's say of %s failed, again in %.1fs: %r",
                self.tp,
                delay,
                exc,
            )

        try:
            await retry_with_backoff(
                lambda: self.checkpoint(topics, group_id),
                retry_on=lambda exc: not isinstance(exc, PartitionLost),
                first_delay_s=RETRY_INITIAL_S,
                max_delay_s=RETRY_MAX_S,
                on_retry=not_yet,
            )
        except PartitionLost:
            return False
        return True

    async def checkpoint_and_evict(self, topics: Topics, group_id: str) -> None:
        """A checkpoint, then the idle documents it (or an earlier one) holds whole leave
        memory. Under the checkpoint's lock, so no snapshot taken by a checkpoint not yet
        committed passes for the truth."""
        async with self._checkpointing:
            await self._checkpoint(topics, group_id)
            for doc_id in self.residency.evict_idle(self.busy):
                self.changed_at.pop(doc_id, None)

    async def _checkpoint(self, topics: Topics, group_id: str) -> None:
        docs = self.docs
        label = docs.next_offset
        if label is None:
            return
        # Never past a command still waiting for its document (``DocumentLoads``): the
        # snapshots say which later commands they hold, and a crash replays that one.
        waiting = self.loads.first_waiting() if self.loads is not None else None
        offset = label if waiting is None else min(label, waiting)
        if not docs.dirty and not docs.deleted and not docs.outcomes and offset == self.committed:
            return
        publisher = self.ownership.outcomes
        assert publisher is not None
        snapshots, deleted = docs.take_snapshots()
        outcomes, docs.outcomes = docs.outcomes, []
        t = topics
        records = [
            OutRecord(t.snapshots, s.doc_id, encode(s), headers_for(s.type)) for s in snapshots
        ]
        for doc_id, user_id in deleted.items():
            marker = deleted_marker(doc_id, user_id, label - 1)
            records.append(OutRecord(t.snapshots, doc_id, encode(marker), headers_for(marker.type)))
            records += [OutRecord(t.snapshots, doc_id, None), OutRecord(t.documents, doc_id, None)]
        records += [
            OutRecord(t.outcomes, o.doc_id or o.user_id, encode(o), headers_for(o.type))
            for o in outcomes
        ]
        try:
            positions = await publisher.checkpoint(records, {self.tp: offset}, group_id)
        except BaseException:
            docs.restore(snapshots, deleted)
            docs.outcomes[:0] = outcomes
            raise
        docs.snapshots_written(snapshots, [p.offset for p in positions[: len(snapshots)]])
        self.committed = offset
        if self.on_feedback is not None:
            for o in outcomes:
                if isinstance(o, SuggestionFeedbackOutcome):
                    self.on_feedback(o)

    async def checkpoint_every(self, interval_s: float, topics: Topics, group_id: str) -> None:
        """Checkpoints until the partition is lost, each followed by the eviction of the
        idle documents; a failed one is tried at the next."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.checkpoint_and_evict(topics, group_id)
            except PartitionLost:
                return
            except Exception as exc:
                if not is_bus_error(exc):
                    log.exception("checkpoint of %s failed", self.tp)
                else:
                    log.warning("checkpoint of %s failed, retrying: %r", self.tp, exc)


async def read_snapshots(
    bus: Bus, topic: str, tp: TopicPartition, first_delay_s: float, max_delay_s: float
) -> list[Record]:
    """Every committed record of the snapshot partition of ``tp``, read again with backoff
    while the bus is away."""

    async def read() -> list[Record]:
        p = tp.partition
        begin = (await bus.begin_offsets(topic)).get(p, 0)
        end = (await bus.end_offsets(topic)).get(p, 0)
        return await bus.read_range(topic, p, begin, end, isolation="read_committed")

    async def not_read(exc: Exception, delay: float) -> None:
        log.warning("snapshots of %s not read, retrying: %r", tp, exc)

    return await retry_with_backoff(
        read,
        retry_on=is_bus_error,
        first_delay_s=first_delay_s,
        max_delay_s=max_delay_s,
        on_retry=not_read,
    )
