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
- Eviction: a document with no command for ``doc_evict_s`` whose snapshot holds it whole
  (nothing changed since a committed checkpoint, no pass due or running) leaves memory;
  the owner keeps where its newest snapshot is (from the snapshots read at the
  partition's load, and from where its checkpoints put them). Its next command waits for
  one read of that snapshot (``consumers/document_loads.py``), behind the commands that
  came for it before, while other documents fold on; the committed place stays at the
  first command still waiting. At a partition's load, only the documents written lately
  (within ``doc_evict_s``) or due a pass are read into memory.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time

from amplify_stream.bus.base import Record, TopicPartition
from amplify_stream.documents.analyzers import DocumentAnalyzer
from amplify_stream.documents.partition import (
    Answer,
    Folded,
    PartitionDocuments,
    analyzed_outcome,
    pass_answers,
)
from amplify_stream.documents.say import Source, ignores_event
from amplify_stream.documents.snapshot import suggestion_event
from amplify_stream.documents.state import LiveSuggestion
from amplify_stream.events.documents import (
    DocIgnores,
    DocumentCommand,
    DocumentDeleted,
    DocumentDismissed,
    DocumentEdited,
    DocumentTimings,
    DocumentWord,
    SuggestionFeedbackOutcome,
    document_command_adapter,
)
from amplify_stream.providers.local.paragraphs import paragraph_cache_info
from consumers.document_loads import DocumentLoads
from consumers.document_outbox import Outbox
from consumers.document_residency import Residency
from consumers.owned_documents import OwnedPartition, read_snapshots
from consumers.ownership import Ownership
from consumers.worker import RETRY_INITIAL_S, RETRY_MAX_S, Worker, WorkerDeps
from producers.lease import PartitionLost

log = logging.getLogger(__name__)

# Commands fold in microseconds; many may wait for their partition's snapshots at once.
CONCURRENCY = 4096
HANDOVER_CHECKPOINT_S = 5.0
# Evicted documents read back at once (on Kafka, each read is a consumer of its own).
LOADS_AT_ONCE = 16


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
        self._evict_s = settings.doc_evict_s
        self._parts: dict[TopicPartition, OwnedPartition] = {}
        self._outbox = Outbox(self.stream_producer, self.topics.stream)
        self._reads = asyncio.Semaphore(LOADS_AT_ONCE)

    # ------------------------------------------------------------ partitions

    async def on_assignment(self, partitions: set[TopicPartition]) -> None:
        self._outbox.start()
        source = Source(self._analyzer.name, self._analyzer.model)
        for tp in partitions:
            docs = PartitionDocuments(self._max_chars, source)
            residency = Residency(docs, tp.partition, self._evict_s, self.metrics)
            part = OwnedPartition(
                tp, self.ownership_of(tp), docs, residency, on_feedback=self._counted
            )
            part.loads = DocumentLoads(
                self.bus,
                self.topics.snapshots,
                tp.partition,
                docs,
                functools.partial(self._fold, part),
                reads=self._reads,
                observe=residency.loaded,
            )
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

    async def _load(self, part: OwnedPartition) -> None:
        """The newest snapshot of each document of the partition (after the fence: an
        older owner's open checkpoint is aborted, not waited for), then checkpoints."""
        if not await part.ownership.fenced():
            return
        records = await read_snapshots(
            self.bus, self.topics.snapshots, part.tp, RETRY_INITIAL_S, RETRY_MAX_S
        )
        for doc_id in part.residency.take_in(records):
            self._schedule(part, doc_id)
        known, resident = len(part.docs.snapshot_at), len(part.docs.docs)
        log.info("%s: %d documents from their snapshots, %d in memory", part.tp, known, resident)
        part.checkpoints = asyncio.create_task(
            part.checkpoint_every(self._snapshot_s, self.topics, self.group_id),
            name=f"documents:checkpoints:{part.tp}",
        )

    async def on_handover(self, partitions: set[TopicPartition]) -> None:
        for tp in partitions:
            part = self._parts.pop(tp, None)
            if part is None:
                continue
            tasks = part.stop_all()
            await asyncio.gather(*tasks, return_exceptions=True)
            part.residency.stop_reporting()
            # What changed since the last checkpoint, so the next owner folds little.
            try:
                async with asyncio.timeout(HANDOVER_CHECKPOINT_S):
                    await part.checkpoint(self.topics, self.group_id)
            except Exception as exc:
                log.warning("%s handed over without a last checkpoint: %r", tp, exc)

    def _counted(self, feedback: SuggestionFeedbackOutcome) -> None:
        self.metrics.suggestion_feedback.labels(feedback.rule or "", feedback.action).inc()

    # ------------------------------------------------------------ commands

    async def handle(self, event: DocumentCommand, record: Record) -> None:
        # No await before the fold: each record's task takes its first step in the order
        # the records were dispatched, so a partition's commands fold in log order.
        part = self._parts.get(TopicPartition(record.topic, record.partition))
        if part is None or part.ownership.lost or part.loads is None:
            raise PartitionLost(f"{record.topic}[{record.partition}] is not ours any more")
        if part.loads.needed(event.doc_id):
            # Queued behind the read of its document's snapshot, in log order.
            folded = await part.loads.fold_when_loaded(event, record.offset)
        else:
            folded = self._fold(part, event, record.offset)
        # What a dismissal means rests on the passes since the last checkpoint, which are
        # not in the log (a new owner folding the command again may not find the
        # suggestion it names): it is made durable before the writer hears it, as an edit
        # is in the log before its doc.ack.
        if _said(event, folded):
            if not await part.durable(self.topics, self.group_id):
                return
            # Told as the document is now: answers folded after it went out meanwhile.
            self._outbox.put(part.ownership, [_now(part, a) for a in folded.answers])

    def _fold(self, part: OwnedPartition, event: DocumentCommand, offset: int) -> Folded:
        """``event`` folded into its document (in memory), and what that starts: its pass
        rescheduled, its answers sent (a writer's say's once it is durable: ``handle``)."""
        folded = part.docs.fold(event, offset)
        if event.doc_id in part.docs.docs:
            part.residency.touch(event.doc_id)
        if isinstance(event, DocumentEdited):
            result = "applied" if folded.changed else "refused"
            self.metrics.doc_edits.labels(result).inc()
        if isinstance(event, DocumentDeleted):
            part.stop_pass(event.doc_id)
            part.changed_at.pop(event.doc_id, None)
        if folded.changed is not None:
            self._schedule(part, folded.changed)
        if folded.answers and not _said(event, folded):
            self._outbox.put(part.ownership, folded.answers)
        return folded

    # ------------------------------------------------------------ passes

    def _schedule(self, part: OwnedPartition, doc_id: str) -> None:
        """A pass after ``doc_idle_ms`` of quiet; a running one is superseded."""
        part.stop_pass(doc_id)
        part.changed_at[doc_id] = time.monotonic()
        loop = asyncio.get_running_loop()
        part.timers[doc_id] = loop.call_later(self._idle_s, self._start_pass, part, doc_id)

    def _start_pass(self, part: OwnedPartition, doc_id: str) -> None:
        part.timers.pop(doc_id, None)
        if self._parts.get(part.tp) is not part or doc_id not in part.docs.docs:
            return
        task = asyncio.create_task(self._pass(part, doc_id), name=f"documents:pass:{doc_id}")
        part.passes[doc_id] = task
        task.add_done_callback(
            lambda t: part.passes.pop(doc_id, None) if part.passes.get(doc_id) is t else None
        )

    async def _pass(self, part: OwnedPartition, doc_id: str) -> None:
        doc = part.docs.docs[doc_id]
        began = time.monotonic()

        def emit(s: LiveSuggestion) -> None:
            self._outbox.put(part.ownership, [Answer(suggestion_event(doc, s))])

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
        self._outbox.put(part.ownership, answers)
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
        info = paragraph_cache_info()
        if info.hits + info.misses:
            self.metrics.doc_cache_hit_ratio.set(info.hits / (info.hits + info.misses))

    async def on_stop(self) -> None:
        await self._outbox.stop()


def _said(event: DocumentCommand, folded: Folded) -> bool:
    """Whether the command is the writer's say and changed the document."""
    return isinstance(event, DocumentDismissed | DocumentWord) and folded.dirty


def _now(part: OwnedPartition, answer: Answer) -> Answer:
    """A ``doc.ignores`` made again from the document as it is (the writer's say folded
    since is in it); any other answer as it was."""
    event = answer.event
    doc = part.docs.docs.get(event.doc_id or "") if isinstance(event, DocIgnores) else None
    if doc is None or not isinstance(event, DocIgnores):
        return answer
    return Answer(ignores_event(doc, event.request_id), answer.reply_to)
