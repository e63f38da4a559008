"""The document owner: one member of a consumer group over the edit log
(``amplify.documents.v1``, key ``doc_id``), so each document has one owner at a time,
whatever gateway its edits came through (docs/protocol.md section 6).

The imperative shell of the live-document core (``amplify_stream/documents/``): it
reads the log and the snapshots, times the passes and writes what the core answers.

- Folding: each command is folded into its partition's documents in log order
  (``amplify_stream/documents/partition.py``), and the answers (``doc.ack``,
  ``version_conflict``, ``doc.retracted``...) go to the stream topic, keyed by ``doc_id``,
  through one ordered outbox: a client hears its document's events in the order they
  happened.
- Passes: after ``doc_idle_ms`` without an edit, a document's stale paragraphs are read
  again (``DocumentAnalyzer``); an edit meanwhile cancels the pass (at most one per
  document at a time) and waits for quiet again.
- Checkpoints: every ``doc_snapshot_ms``, the snapshots of the documents that changed, the
  ``document.analyzed`` outcomes of the passes since, and the owner's place in the log go
  in one transaction of the partition's fenced producer. Snapshots live in a compacted
  topic partitioned like the log, so a new owner of partition p reads partition p of it
  (the newest state of each document, kept for ever, past the log's retention) and folds
  the edits after the committed place. A crash loses no acknowledged edit: the edit is
  in the log before it is folded, and the place is only committed with the state that
  holds it. An outcome goes out exactly once: with the state that records its pass.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from amplify_stream.bus import is_bus_error
from amplify_stream.bus.base import Position, Record, TopicPartition
from amplify_stream.documents.analyzers import DocumentAnalyzer
from amplify_stream.documents.partition import (
    Answer,
    PartitionDocuments,
    analyzed_outcome,
    deleted_marker,
    pass_answers,
)
from amplify_stream.documents.snapshot import suggestion_event
from amplify_stream.documents.state import LiveSuggestion
from amplify_stream.events import encode, headers_for
from amplify_stream.events.documents import (
    DocumentCommand,
    DocumentDeleted,
    DocumentEdited,
    DocumentSnapshot,
    DocumentTimings,
    document_command_adapter,
)
from amplify_stream.providers.local.paragraphs import cached_paragraph
from amplify_stream.retry import retry_with_backoff
from consumers.ownership import Ownership
from consumers.worker import RETRY_INITIAL_S, RETRY_MAX_S, Worker, WorkerDeps
from producers.lease import PartitionLost
from producers.outcomes import OutRecord

log = logging.getLogger(__name__)

# Commands fold in microseconds; many may wait for their partition's snapshots at once.
CONCURRENCY = 4096
HANDOVER_CHECKPOINT_S = 5.0


@dataclass
class _Partition:
    """What the owner holds of one partition of the log while it owns it."""

    tp: TopicPartition
    ownership: Ownership
    docs: PartitionDocuments
    loading: asyncio.Task[None] | None = None
    checkpoints: asyncio.Task[None] | None = None
    committed: int | None = None
    timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    passes: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    # When each document's idle wait began (its last change), monotonic seconds.
    changed_at: dict[str, float] = field(default_factory=dict)

    def stop_pass(self, doc_id: str) -> None:
        if (timer := self.timers.pop(doc_id, None)) is not None:
            timer.cancel()
        if (task := self.passes.pop(doc_id, None)) is not None:
            task.cancel()  # closes its provider stream; the document is untouched

    def stop_all(self) -> list[asyncio.Task[Any]]:
        tasks = [t for t in (self.loading, self.checkpoints) if t is not None]
        tasks += self.passes.values()
        for doc_id in list(self.timers) + list(self.passes):
            self.stop_pass(doc_id)
        for task in tasks:
            task.cancel()
        return tasks


class DocumentOwner(Worker[DocumentCommand]):
    role = "documents"
    adapter = document_command_adapter
    writes_outcomes = True
    commits_offsets = False

    def __init__(self, deps: WorkerDeps, analyzer: DocumentAnalyzer) -> None:
        super().__init__(deps, deps.topics.documents, concurrency=CONCURRENCY)
        settings = deps.settings
        self._analyzer = analyzer
        self._idle_s = settings.doc_idle_ms / 1000
        self._snapshot_s = settings.doc_snapshot_ms / 1000
        self._max_chars = settings.max_story_chars
        self._parts: dict[TopicPartition, _Partition] = {}
        self._outbox: asyncio.Queue[tuple[Ownership, list[Answer]]] = asyncio.Queue()
        self._sender: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ partitions

    async def on_assignment(self, partitions: set[TopicPartition]) -> None:
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_loop(), name="documents:outbox")
        for tp in partitions:
            part = _Partition(tp, self.ownership_of(tp), PartitionDocuments(self._max_chars))
            part.loading = asyncio.create_task(self._load(part), name=f"documents:load:{tp}")
            self._parts[tp] = part

    async def ready_for(self, owned: Ownership) -> bool:
        if not await owned.fenced():
            return False
        part = self._parts.get(owned.tp)
        if part is None or part.loading is None:
            return False
        if not part.loading.done():
            await asyncio.wait({part.loading})
        if part.loading.cancelled():
            return False
        if (failure := part.loading.exception()) is not None:
            # Not the bus (that is retried): skipping the partition's records would leave
            # its writers unanswered. The worker stops; its supervisor starts it again.
            raise RuntimeError(f"the snapshots of {owned.tp} could not be loaded") from failure
        return True

    async def _load(self, part: _Partition) -> None:
        """The newest snapshot of each document of the partition (after the fence: an
        older owner's open checkpoint is aborted, not waited for), then checkpoints."""
        if not await part.ownership.fenced():
            return
        topic, p = self.topics.snapshots, part.tp.partition

        async def read() -> list[Record]:
            begin = (await self.bus.begin_offsets(topic)).get(p, 0)
            end = (await self.bus.end_offsets(topic)).get(p, 0)
            return await self.bus.read_range(topic, p, begin, end, isolation="read_committed")

        async def not_read(exc: Exception, delay: float) -> None:
            log.warning("snapshots of %s not read, retrying: %r", part.tp, exc)

        records = await retry_with_backoff(
            read,
            retry_on=is_bus_error,
            first_delay_s=RETRY_INITIAL_S,
            max_delay_s=RETRY_MAX_S,
            on_retry=not_read,
        )
        for record in records:
            if not record.value:
                part.docs.forget(record.key)
                continue
            try:
                part.docs.load(DocumentSnapshot.model_validate_json(record.value))
            except ValidationError:
                # One unreadable snapshot must not keep the partition's other documents
                # from their writers; that document answers not_found until it is fixed.
                log.exception("snapshot at %s of %s unreadable, skipped", record.cursor, part.tp)
        log.info("%s: %d documents from their snapshots", part.tp, len(part.docs.docs))
        # Documents whose last change the snapshot holds but no pass read yet.
        for doc_id, doc in part.docs.docs.items():
            if doc.analyzed_version != doc.version:
                self._schedule(part, doc_id)
        part.checkpoints = asyncio.create_task(
            self._checkpoint_loop(part), name=f"documents:checkpoints:{part.tp}"
        )

    async def on_handover(self, partitions: set[TopicPartition]) -> None:
        for tp in partitions:
            part = self._parts.pop(tp, None)
            if part is None:
                continue
            tasks = part.stop_all()
            await asyncio.gather(*tasks, return_exceptions=True)
            # What changed since the last checkpoint, so the next owner folds little.
            try:
                async with asyncio.timeout(HANDOVER_CHECKPOINT_S):
                    await self._checkpoint(part)
            except Exception as exc:
                log.warning("%s handed over without a last checkpoint: %r", tp, exc)

    # ------------------------------------------------------------ commands

    async def handle(self, event: DocumentCommand, record: Record) -> None:
        # No await before the fold: each record's task takes its first step in the order
        # the records were dispatched, so a partition's commands fold in log order.
        part = self._parts.get(TopicPartition(record.topic, record.partition))
        if part is None or part.ownership.lost:
            raise PartitionLost(f"{record.topic}[{record.partition}] is not ours any more")
        folded = part.docs.fold(event, record.offset)
        if isinstance(event, DocumentEdited):
            result = "applied" if folded.changed else "refused"
            self.metrics.doc_edits.labels(result).inc()
        if isinstance(event, DocumentDeleted):
            part.stop_pass(event.doc_id)
            part.changed_at.pop(event.doc_id, None)
        if folded.changed is not None:
            self._schedule(part, folded.changed)
        if folded.answers:
            self._outbox.put_nowait((part.ownership, folded.answers))

    # ------------------------------------------------------------ passes

    def _schedule(self, part: _Partition, doc_id: str) -> None:
        """A pass after ``doc_idle_ms`` of quiet; a running one is superseded."""
        part.stop_pass(doc_id)
        part.changed_at[doc_id] = time.monotonic()
        loop = asyncio.get_running_loop()
        part.timers[doc_id] = loop.call_later(self._idle_s, self._start_pass, part, doc_id)

    def _start_pass(self, part: _Partition, doc_id: str) -> None:
        part.timers.pop(doc_id, None)
        if self._parts.get(part.tp) is not part or doc_id not in part.docs.docs:
            return
        task = asyncio.create_task(self._pass(part, doc_id), name=f"documents:pass:{doc_id}")
        part.passes[doc_id] = task
        task.add_done_callback(
            lambda t: part.passes.pop(doc_id, None) if part.passes.get(doc_id) is t else None
        )

    async def _pass(self, part: _Partition, doc_id: str) -> None:
        doc = part.docs.docs[doc_id]
        began = time.monotonic()

        def emit(s: LiveSuggestion) -> None:
            self._outbox.put_nowait((part.ownership, [Answer(suggestion_event(doc, s))]))

        idle_ms = (began - part.changed_at.get(doc_id, began)) * 1000
        try:
            found = await self._analyzer.analyze(doc, emit)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The live set stays as it was; the next edit brings another pass.
            log.exception("analysis pass of %s failed", doc_id)
            return
        result = found.result
        answers = pass_answers(doc, found, part.docs.told.setdefault(doc_id, {}))
        self._outbox.put_nowait((part.ownership, answers))
        analysis_ms = (time.monotonic() - began) * 1000
        part.docs.dirty.add(doc_id)
        timings = DocumentTimings(idle_ms=round(idle_ms, 3), analysis_ms=round(analysis_ms, 3))
        part.docs.outcomes.append(
            analyzed_outcome(doc, self._analyzer.name, result.reanalyzed, timings)
        )
        if found.skipped:
            name = self._analyzer.name
            self.metrics.findings_skipped.labels(name, "suggestion").inc(found.skipped)
        self.metrics.doc_analysis_ms.observe(analysis_ms)
        self.metrics.doc_paragraphs_read.observe(result.reanalyzed)
        info = cached_paragraph.cache_info()
        if info.hits + info.misses:
            self.metrics.doc_cache_hit_ratio.set(info.hits / (info.hits + info.misses))

    # ------------------------------------------------------------ the stream

    async def _send_loop(self) -> None:
        """Every answer in the order it was made, without waiting for the broker (the
        records of one key keep their order in the producer)."""
        producer, topic = self.stream_producer, self.topics.stream
        while True:
            ownership, answers = await self._outbox.get()
            try:
                await ownership.hold()  # a zombie writes nothing
            except PartitionLost:
                continue
            for answer in answers:
                event = answer.event
                headers = headers_for(event.type, reply_to=answer.reply_to)
                key = event.doc_id or ""
                try:
                    sent = await producer.send(topic, key, encode(event), headers)
                except Exception as exc:
                    _log_lost(exc)
                    continue
                if isinstance(sent, asyncio.Future):
                    sent.add_done_callback(_check_sent)

    # ------------------------------------------------------------ checkpoints

    async def _checkpoint_loop(self, part: _Partition) -> None:
        while True:
            await asyncio.sleep(self._snapshot_s)
            try:
                await self._checkpoint(part)
            except PartitionLost:
                return
            except Exception as exc:
                if not is_bus_error(exc):
                    log.exception("checkpoint of %s failed", part.tp)
                else:
                    log.warning("checkpoint of %s failed, retrying: %r", part.tp, exc)

    async def _checkpoint(self, part: _Partition) -> None:
        docs = part.docs
        offset = docs.next_offset
        if offset is None or (
            not docs.dirty and not docs.deleted and not docs.outcomes and offset == part.committed
        ):
            return
        publisher = part.ownership.outcomes
        assert publisher is not None
        snapshots, deleted = docs.take_snapshots()
        outcomes, docs.outcomes = docs.outcomes, []
        t = self.topics
        records = [
            OutRecord(t.snapshots, s.doc_id, encode(s), headers_for(s.type)) for s in snapshots
        ]
        for doc_id, user_id in deleted.items():
            marker = deleted_marker(doc_id, user_id, offset - 1)
            records.append(OutRecord(t.snapshots, doc_id, encode(marker), headers_for(marker.type)))
            records += [OutRecord(t.snapshots, doc_id, None), OutRecord(t.documents, doc_id, None)]
        records += [
            OutRecord(t.outcomes, o.doc_id, encode(o), headers_for(o.type)) for o in outcomes
        ]
        try:
            await publisher.checkpoint(records, {part.tp: offset}, self.group_id)
        except BaseException:
            docs.restore(snapshots, deleted)
            docs.outcomes[:0] = outcomes
            raise
        part.committed = offset

    async def on_stop(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)


def _check_sent(sent: asyncio.Future[Position]) -> None:
    if not sent.cancelled() and (exc := sent.exception()) is not None:
        _log_lost(exc)


def _log_lost(exc: BaseException) -> None:
    # Not retried: a lost answer is caught up by the client's reopen (the document's
    # state is in the log and the owner, not in these records).
    log.warning("a document event was not written to the stream: %r", exc)
