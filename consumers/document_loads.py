"""Evicted documents of one partition coming back into memory: each read from its newest
snapshot with one read of one offset of the snapshot topic (``bus.read_range``), while
the commands that came for it meanwhile wait, in log order, and other documents fold on.

The document and the commands that waited for it fold in one synchronous step, so a
checkpoint never sees it half caught up (its snapshot would claim commands it lacks).
Until then the first command still waiting is where the owner's committed place stops
(``first_waiting``): a crash meanwhile replays it, whatever was folded after it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from amplify_stream.bus import is_bus_error
from amplify_stream.bus.base import Bus, Record
from amplify_stream.documents.partition import Folded, PartitionDocuments
from amplify_stream.events.documents import DocumentCommand, DocumentSnapshot
from amplify_stream.retry import retry_with_backoff
from consumers.worker import RETRY_INITIAL_S, RETRY_MAX_S

log = logging.getLogger(__name__)

Fold = Callable[[DocumentCommand, int], Folded]
# How long a document took to come back (ms), and whether its snapshot was readable.
Observe = Callable[[float, bool], None]


@dataclass
class _Load:
    began: float
    task: asyncio.Task[None] | None = None
    # The commands waiting for the document, in log order: (command, offset, its fold).
    waiting: list[tuple[DocumentCommand, int, asyncio.Future[Folded]]] = field(default_factory=list)


class DocumentLoads:
    def __init__(
        self,
        bus: Bus,
        topic: str,
        partition: int,
        docs: PartitionDocuments,
        fold: Fold,
        *,
        reads: asyncio.Semaphore,
        observe: Observe,
    ) -> None:
        """``fold(command, offset)``: what folding a command does in the owner (answers
        sent included), called for each waiting command once its document is back.
        ``reads``: the reads of the snapshot topic that may run at once (the owner's)."""
        self._bus = bus
        self._topic = topic
        self._partition = partition
        self._docs = docs
        self._fold = fold
        self._reads = reads
        self._observe = observe
        self._loads: dict[str, _Load] = {}

    def needed(self, doc_id: str) -> bool:
        """Whether a command for ``doc_id`` must wait: its document is evicted, or is
        being read back."""
        return doc_id in self._loads or self._docs.evicted(doc_id)

    def fold_when_loaded(self, command: DocumentCommand, offset: int) -> asyncio.Future[Folded]:
        """``command`` (at ``offset``) folded once its document is back, after the
        commands that came for it before (a read of its snapshot starts with the first)."""
        load = self._loads.get(command.doc_id)
        if load is None:
            load = self._loads[command.doc_id] = _Load(time.monotonic())
            at = self._docs.snapshot_at[command.doc_id]
            load.task = asyncio.create_task(
                self._load(command.doc_id, at), name=f"documents:load:{command.doc_id}"
            )
        folded: asyncio.Future[Folded] = asyncio.get_running_loop().create_future()
        load.waiting.append((command, offset, folded))
        return folded

    def first_waiting(self) -> int | None:
        """The offset of the first command still waiting for its document."""
        return min((load.waiting[0][1] for load in self._loads.values()), default=None)

    def stop(self) -> list[asyncio.Task[None]]:
        """Stop the reads. What waits stays counted (``first_waiting``), so the handover's
        checkpoint does not commit past it."""
        tasks = [load.task for load in self._loads.values() if load.task is not None]
        for task in tasks:
            task.cancel()
        return tasks

    async def _load(self, doc_id: str, at: int) -> None:
        async with self._reads:
            records = await self._read(at)
        # One synchronous step from here: the document, then what waited for it.
        load = self._loads.pop(doc_id)
        readable = self._back(doc_id, records, at)
        self._observe((time.monotonic() - load.began) * 1000, readable)
        for command, offset, folded in load.waiting:
            try:
                result = self._fold(command, offset)
            except Exception as exc:  # a bug: that command's handler reports it
                if not folded.done():
                    folded.set_exception(exc)
                continue
            if not folded.done():
                folded.set_result(result)

    def _back(self, doc_id: str, records: list[Record], at: int) -> bool:
        """The document in memory again from what was read at ``at``; False when that is
        no snapshot of it. Then, as an unreadable snapshot at the partition's load, the
        document answers not_found rather than keep its commands waiting for ever."""
        record = next((r for r in records if r.offset == at), None)
        if record is None or record.key != doc_id or not record.value:
            log.error("no snapshot of %s at offset %d of its partition", doc_id, at)
        else:
            try:
                self._docs.load(DocumentSnapshot.model_validate_json(record.value), at)
                return True
            except ValueError:  # a ValidationError is one
                log.exception("snapshot of %s at offset %d unreadable, skipped", doc_id, at)
        self._docs.forget(doc_id)
        return False

    async def _read(self, at: int) -> list[Record]:
        """The snapshot record at ``at``, read again (with backoff) until the read works:
        whatever failed, the commands that wait are in the log, uncommitted, and giving
        up would drop them."""

        async def read() -> list[Record]:
            return await self._bus.read_range(
                self._topic, self._partition, at, at + 1, isolation="read_committed"
            )

        async def failed(exc: Exception, delay: float) -> None:
            where = f"{self._topic}[{self._partition}]@{at}"
            if is_bus_error(exc):
                log.warning("snapshot at %s not read, again in %.1fs: %r", where, delay, exc)
            else:
                log.exception("snapshot at %s not read, again in %.1fs", where, delay)

        return await retry_with_backoff(
            read,
            retry_on=lambda exc: True,
            first_delay_s=RETRY_INITIAL_S,
            max_delay_s=RETRY_MAX_S,
            on_retry=failed,
        )
