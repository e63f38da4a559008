"""Which documents of one partition its owner holds in memory. A document with no command
for ``evict_after_s`` whose snapshot holds it whole leaves memory: all that is kept of
it is where that snapshot is (``PartitionDocuments.snapshot_at``), and its next command
reads it back (``consumers/document_loads.py``). At the partition's load only the
documents written lately, or due a pass, are taken into memory."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable

from pydantic import ValidationError

from amplify_stream.bus.base import Record
from amplify_stream.documents.partition import PartitionDocuments
from amplify_stream.events.documents import DocumentSnapshot
from amplify_stream.metrics import Metrics

log = logging.getLogger(__name__)


class Residency:
    def __init__(
        self, docs: PartitionDocuments, partition: int, evict_after_s: float, metrics: Metrics
    ) -> None:
        self._docs = docs
        self._label = str(partition)
        self._evict_after_s = evict_after_s
        self._metrics = metrics
        self._reporting = True
        # The documents in memory by their last command (monotonic seconds), oldest
        # first: the idle ones are at the front.
        self._last_command: dict[str, float] = {}

    def touch(self, doc_id: str, at: float | None = None) -> None:
        """A command for ``doc_id`` (in memory) now, or at monotonic ``at``."""
        self._last_command.pop(doc_id, None)
        self._last_command[doc_id] = time.monotonic() if at is None else at

    def take_in(self, records: list[Record]) -> list[str]:
        """The partition's snapshot records, as read at its load: each document's newest
        one indexed, and read into memory if it was written within ``evict_after_s`` or
        no pass has read its last change. Those due a pass, returned."""
        newest: dict[str, Record] = {}
        for record in records:  # not compacted yet: the last of each key is the one
            newest.pop(record.key, None)
            newest[record.key] = record
        now, wall_s = time.monotonic(), time.time()
        due: list[str] = []
        for doc_id, record in newest.items():
            if not record.value:
                self._docs.forget(doc_id)
                continue
            try:
                snapshot = DocumentSnapshot.model_validate_json(record.value)
            except ValidationError:
                # One unreadable snapshot must not keep the partition's other documents
                # from their writers; that document answers not_found until it is fixed.
                log.exception("snapshot at %s of %s unreadable, skipped", record.cursor, doc_id)
                continue
            self._docs.load(snapshot, record.offset)
            if (doc := self._docs.docs.get(doc_id)) is None:
                continue  # deleted
            idle_s = max(0.0, wall_s - record.timestamp_ms / 1000)
            # Its last change not read by a pass yet (or paragraphs an undo of the
            # writer's say left to read again): it stays for its pass.
            if doc.analyzed_version != doc.version or doc.stale():
                due.append(doc_id)
            elif idle_s >= self._evict_after_s:
                self._docs.evict(doc_id)
                continue
            self.touch(doc_id, now - idle_s)
        self.report()
        return due

    def evict_idle(self, busy: Callable[[str], bool]) -> list[str]:
        """The documents idle for ``evict_after_s`` whose snapshot holds them whole leave
        memory, unless ``busy`` (a pass due or running): those gone from memory (deleted
        ones too). Only right after a committed checkpoint, none in flight (its snapshots
        are not where they are yet)."""
        docs = self._docs
        since = time.monotonic() - self._evict_after_s
        gone: list[str] = []
        evicted = 0
        for doc_id, at in self._last_command.items():
            if at > since:
                break
            if doc_id not in docs.docs:  # deleted
                gone.append(doc_id)
            elif docs.evictable(doc_id) and not busy(doc_id):
                docs.evict(doc_id)
                gone.append(doc_id)
                evicted += 1
        for doc_id in gone:
            del self._last_command[doc_id]
        self._metrics.doc_evictions.inc(evicted)
        self.report()
        return gone

    def loaded(self, ms: float, readable: bool) -> None:
        """An evicted document was read back (``readable``: from its snapshot) in ``ms``."""
        self._metrics.doc_loads.labels("loaded" if readable else "unreadable").inc()
        self._metrics.doc_load_ms.observe(ms)
        self.report()

    def report(self) -> None:
        if self._reporting:
            self._metrics.doc_resident.labels(self._label).set(len(self._docs.docs))

    def stop_reporting(self) -> None:
        """The partition is going: its gauge goes with it."""
        self._reporting = False
        with contextlib.suppress(KeyError):  # never reported: its load did not end
            self._metrics.doc_resident.remove(self._label)
