"""The documents of one partition of the edit log, as their owner folds its commands.

Pure and synchronous: a command in, the answers out (each for one socket, or for every
socket that watches the document). Folding the same records from the same snapshots
gives the same states and the same answers, conflicts included, so a new owner that
replays what the last snapshot did not hold ends where the old one was.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from amplify_stream.documents import say
from amplify_stream.documents.analyzers import PassFindings
from amplify_stream.documents.local_pass import insights_of
from amplify_stream.documents.snapshot import from_snapshot, suggestion_event, to_snapshot
from amplify_stream.documents.state import Applied, DocumentState
from amplify_stream.events import ALL_FOCUS, ErrorEvent, Focus, now_rfc3339
from amplify_stream.events.documents import (
    DocAck,
    DocAnalyzed,
    DocEvent,
    DocInsight,
    DocOpened,
    DocRetracted,
    DocumentAnalyzedOutcome,
    DocumentCommand,
    DocumentDeleted,
    DocumentDismissed,
    DocumentEdited,
    DocumentOpenRequested,
    DocumentPreferences,
    DocumentSnapshot,
    DocumentTimings,
    DocumentWord,
    SuggestionFeedbackOutcome,
)
from amplify_stream.events.text_limits import TextTooLong
from amplify_stream.providers.base import InsightFound
from amplify_stream.text.edits import Change, InvalidChange

# The insights a document's watchers last heard, by focus: (summary, metrics).
Told = dict[Focus, tuple[str, dict[str, float]]]


@dataclass(frozen=True, slots=True)
class Answer:
    """An event for the stream topic: to the socket ``reply_to``, or (None) to every
    socket that watches the document."""

    event: DocEvent | ErrorEvent
    reply_to: str | None = None


@dataclass(frozen=True, slots=True)
class Folded:
    answers: list[Answer]
    # The document changed (an edit applied, a document created): its pass is due.
    changed: str | None = None
    # The writer's say changed the document's state (not a refusal).
    dirty: bool = False


Outcome = DocumentAnalyzedOutcome | SuggestionFeedbackOutcome


@dataclass
class PartitionDocuments:
    max_chars: int
    # Who finds the suggestions (what the writers' feedback is about).
    source: say.Source = field(default_factory=say.Source)
    docs: dict[str, DocumentState] = field(default_factory=dict)
    created_at: dict[str, str] = field(default_factory=dict)
    # The offset after the last record folded (None: none since the snapshots).
    next_offset: int | None = None
    # Where each loaded snapshot stands: records at or below it are already in it.
    snapshot_offsets: dict[str, int] = field(default_factory=dict)
    # The offset of each document's newest snapshot in the snapshot topic: all that is kept
    # of an evicted document (``evict``), enough to read it back with one read.
    snapshot_at: dict[str, int] = field(default_factory=dict)
    # Changed since the last checkpoint; deleted since then; outcomes of finished passes.
    dirty: set[str] = field(default_factory=set)
    deleted: dict[str, str] = field(default_factory=dict)  # doc_id -> user_id
    outcomes: list[Outcome] = field(default_factory=list)
    # Per document, the insights its watchers last heard, so that a pass tells only the
    # ones that changed (not kept in snapshots: a new owner's first pass tells them all).
    told: dict[str, Told] = field(default_factory=dict)

    # ------------------------------------------------------------ snapshots

    def load(self, snapshot: DocumentSnapshot, at: int | None = None) -> None:
        """The newest snapshot of a document (a later one replaces an earlier one), read at
        offset ``at`` of the snapshot topic (None: not known, so never evicted)."""
        doc_id = snapshot.doc_id
        self.evict(doc_id)
        self.snapshot_at.pop(doc_id, None)
        if not snapshot.deleted:
            self.docs[doc_id] = from_snapshot(snapshot)
            self.created_at[doc_id] = snapshot.created_at
            if at is not None:
                self.snapshot_at[doc_id] = at
        self.snapshot_offsets[doc_id] = snapshot.offset

    def snapshots_written(self, snapshots: list[DocumentSnapshot], offsets: list[int]) -> None:
        """Where a committed checkpoint put ``snapshots`` (none deleted since: it stays so)."""
        for snapshot, at in zip(snapshots, offsets, strict=True):
            if snapshot.doc_id in self.docs:
                self.snapshot_at[snapshot.doc_id] = at

    def evicted(self, doc_id: str) -> bool:
        """Whether the document is out of memory, its snapshot the truth."""
        return doc_id in self.snapshot_at and doc_id not in self.docs

    def evictable(self, doc_id: str) -> bool:
        """Whether its newest snapshot holds it whole (no change since it was written)."""
        return doc_id in self.docs and doc_id in self.snapshot_at and doc_id not in self.dirty

    def evict(self, doc_id: str) -> None:
        """The document leaves memory (``evictable``); ``load`` brings it back."""
        self.docs.pop(doc_id, None)
        self.created_at.pop(doc_id, None)
        self.told.pop(doc_id, None)
        self.snapshot_offsets.pop(doc_id, None)

    def forget(self, doc_id: str) -> None:
        """A tombstone of the snapshot topic: the document is gone for good, and so is
        everything kept about it."""
        self.evict(doc_id)
        self.snapshot_at.pop(doc_id, None)
        self.dirty.discard(doc_id)

    def take_snapshots(self) -> tuple[list[DocumentSnapshot], dict[str, str]]:
        """The snapshots of what changed since the last checkpoint, and the documents
        deleted since; both forgotten here (``restore`` puts them back on failure)."""
        offset = (self.next_offset or 1) - 1
        snapshots = [
            to_snapshot(self.docs[d], offset=offset, created_at=self.created_at[d])
            for d in sorted(self.dirty)
            if d in self.docs
        ]
        deleted, self.deleted = self.deleted, {}
        self.dirty.clear()
        return snapshots, deleted

    def restore(self, snapshots: list[DocumentSnapshot], deleted: dict[str, str]) -> None:
        self.dirty.update(s.doc_id for s in snapshots)
        self.deleted.update(deleted)

    # ------------------------------------------------------------ commands

    def fold(self, command: DocumentCommand, offset: int) -> Folded:
        if (held := self.snapshot_offsets.get(command.doc_id)) is not None:
            if offset <= held:
                return Folded([])  # already in the document's snapshot
            del self.snapshot_offsets[command.doc_id]  # the log is past it for good
        # Never back: a command that waited for its document folds after later ones.
        self.next_offset = max(self.next_offset or 0, offset + 1)
        if isinstance(command, DocumentOpenRequested):
            return self._open(command)
        if isinstance(command, DocumentEdited):
            return self._edit(command)
        if isinstance(command, DocumentDeleted):
            return self._delete(command)
        if isinstance(command, DocumentPreferences):
            return self._preferences(command)
        return self._say(command)

    def _open(self, command: DocumentOpenRequested) -> Folded:
        doc = self.docs.get(command.doc_id)
        if command.create and doc is None:
            doc = DocumentState(
                command.doc_id,
                command.user_id,
                command.text,
                title=command.title,
                focus=tuple(command.focus or ALL_FOCUS),
            )
            self.docs[doc.doc_id] = doc
            self.created_at[doc.doc_id] = command.at
            self.dirty.add(doc.doc_id)
            if command.preferences is not None:
                doc.ignores.hear(command.preferences)
            answers = [Answer(_opened(doc, command), command.reply_to)]
            if doc.ignores:
                answers.append(Answer(say.ignores_event(doc, None), command.reply_to))
            return Folded(answers, doc.doc_id)
        if doc is None or doc.user_id != command.user_id:
            return Folded([_not_found(command)])
        # The user's preferences as the store holds them now: what they hide goes before
        # the live set is told again, and every watcher hears it (as with
        # document.preferences).
        prefs = command.preferences
        heard = say.hear(doc, prefs) if prefs is not None else None
        answers = [] if heard is None else [Answer(e) for e in heard.events]
        if heard is not None:
            self.dirty.add(doc.doc_id)
        answers.append(Answer(_opened(doc, command), command.reply_to))
        if doc.ignores:
            answers.append(Answer(say.ignores_event(doc, None), command.reply_to))
        answers += [Answer(suggestion_event(doc, s), command.reply_to) for s in doc.live.values()]
        answers += [Answer(insight_event(doc, i), command.reply_to) for i in insights_of(doc)]
        if doc.analyzed_version == doc.version:
            answers.append(Answer(analyzed(doc, reanalyzed=0), command.reply_to))
        return Folded(answers, doc.doc_id if heard is not None and heard.read_again else None)

    def _edit(self, command: DocumentEdited) -> Folded:
        doc = self.docs.get(command.doc_id)
        if doc is None or doc.user_id != command.user_id:
            return Folded([_not_found(command)])
        changes = [Change(c.start_utf16, c.end_utf16, c.text) for c in command.changes]
        try:
            result = doc.edit(command.version, changes, max_chars=self.max_chars)
        except (InvalidChange, TextTooLong) as exc:
            code = "story_too_large" if isinstance(exc, TextTooLong) else "invalid_message"
            return Folded([_error(command, code, str(exc), version=doc.version)])
        if not isinstance(result, Applied):
            message = (
                f"version {command.version} is not the next one: the document is at "
                f"version {result.version}; reopen it to catch up"
            )
            return Folded([_error(command, "version_conflict", message, version=result.version)])
        self.dirty.add(doc.doc_id)
        self.outcomes += say.accepted(doc, result.accepted, self.source)
        answers = [
            Answer(
                DocAck(doc_id=doc.doc_id, version=doc.version, request_id=command.request_id),
                command.reply_to,
            )
        ]
        if result.retracted:
            answers.append(
                Answer(DocRetracted(doc_id=doc.doc_id, version=doc.version, ids=result.retracted))
            )
        return Folded(answers, doc.doc_id)

    def _say(self, command: DocumentDismissed | DocumentWord) -> Folded:
        doc = self.docs.get(command.doc_id)
        if doc is None or doc.user_id != command.user_id:
            return Folded([_not_found(command)])
        try:
            if isinstance(command, DocumentDismissed):
                said = say.dismiss(doc, command, self.source)
            else:
                said = say.word(doc, command, self.source)
        except say.Refused as exc:
            return Folded([_error(command, exc.code, str(exc), version=doc.version)])
        self.dirty.add(doc.doc_id)
        self.outcomes += said.outcomes
        changed = doc.doc_id if said.read_again else None
        return Folded([Answer(e) for e in said.events], changed, dirty=True)

    def _preferences(self, command: DocumentPreferences) -> Folded:
        doc = self.docs.get(command.doc_id)
        if doc is None or doc.user_id != command.user_id:
            return Folded([])  # gone since the gateway listed it
        said = say.hear(doc, command.preferences)
        if said is None:
            return Folded([])  # older than what the document heard
        self.dirty.add(doc.doc_id)
        return Folded([Answer(e) for e in said.events], doc.doc_id if said.read_again else None)

    def _delete(self, command: DocumentDeleted) -> Folded:
        doc = self.docs.get(command.doc_id)
        if doc is not None and doc.user_id == command.user_id:
            self.forget(command.doc_id)
            self.deleted[command.doc_id] = command.user_id
        return Folded([])


def pass_answers(doc: DocumentState, found: PassFindings, told: Told) -> list[Answer]:
    """What a finished pass tells every watcher: what it retracted, what it added (beyond
    what it emitted as it went), the insights that changed since ``told`` (updated), and
    ``doc.analyzed``."""
    result = found.result
    answers: list[Answer] = []
    if result.retracted:
        answers.append(
            Answer(DocRetracted(doc_id=doc.doc_id, version=doc.version, ids=result.retracted))
        )
    answers += [Answer(suggestion_event(doc, s)) for s in result.added]
    for i in found.insights:
        if told.get(i.focus) != (said := (i.summary, i.metrics)):
            told[i.focus] = said
            answers.append(Answer(insight_event(doc, i)))
    answers.append(Answer(analyzed(doc, reanalyzed=result.reanalyzed)))
    return answers


def insight_event(doc: DocumentState, insight: InsightFound) -> DocInsight:
    return DocInsight(
        doc_id=doc.doc_id,
        version=doc.version,
        focus=insight.focus,
        summary=insight.summary,
        metrics=insight.metrics or None,
    )


def analyzed(doc: DocumentState, *, reanalyzed: int) -> DocAnalyzed:
    return DocAnalyzed(
        doc_id=doc.doc_id,
        version=doc.version,
        suggestions=len(doc.live),
        paragraphs=len(doc.current),
        reanalyzed=reanalyzed,
    )


def analyzed_outcome(
    doc: DocumentState, provider: str, reanalyzed: int, timings: DocumentTimings
) -> DocumentAnalyzedOutcome:
    """The ``document.analyzed`` outcome of a finished pass: the live set it left, by focus."""
    per_focus = dict.fromkeys(doc.focus, 0)
    for s in doc.live.values():
        per_focus[s.focus] = per_focus.get(s.focus, 0) + 1
    return DocumentAnalyzedOutcome(
        doc_id=doc.doc_id,
        user_id=doc.user_id,
        version=doc.version,
        provider=provider,
        suggestions=per_focus,
        paragraphs=len(doc.current),
        reanalyzed=reanalyzed,
        timings=timings,
    )


def deleted_marker(doc_id: str, user_id: str, offset: int) -> DocumentSnapshot:
    """What the snapshot topic says of a deleted document before its tombstone: the
    projector drops it from the store (a tombstone carries no value to say whose)."""
    return DocumentSnapshot(
        doc_id=doc_id,
        user_id=user_id,
        created_at=now_rfc3339(),
        offset=offset,
        focus=[],
        text="",
        version=0,
        suggestions=[],
        current=[],
        ids=0,
        across=[],
        deleted=True,
    )


def _opened(doc: DocumentState, command: DocumentOpenRequested) -> DocOpened:
    return DocOpened(
        doc_id=doc.doc_id,
        version=doc.version,
        request_id=command.request_id,
        text=doc.text,
        title=doc.title,
        focus=list(doc.focus),
    )


_Asked = DocumentOpenRequested | DocumentEdited | DocumentDismissed | DocumentWord


def _not_found(command: _Asked) -> Answer:
    # Another user's document and one that does not exist read the same.
    return _error(command, "not_found", "document not found")


def _error(
    command: _Asked,
    code: str,
    message: str,
    *,
    version: int | None = None,
) -> Answer:
    event = ErrorEvent(
        code=code,
        message=message,
        request_id=command.request_id,
        doc_id=command.doc_id,
        version=version,
    )
    return Answer(event, command.reply_to)
