"""What the documents of one partition keep: nothing of a document once it is deleted,
and no snapshot's place once the log is past it (an owner serving for months keeps the
documents it has, not a trace of every one it ever had)."""

from __future__ import annotations

from amplify_stream.documents.local_pass import local_pass
from amplify_stream.documents.partition import PartitionDocuments, pass_answers
from amplify_stream.documents.snapshot import to_snapshot
from amplify_stream.events.documents import (
    DocChange,
    DocumentDeleted,
    DocumentEdited,
    DocumentOpenRequested,
)


def kept_about(docs: PartitionDocuments, doc_id: str) -> list[str]:
    """The per-document maps of ``docs`` that still name ``doc_id``."""
    maps = {
        "docs": docs.docs,
        "created_at": docs.created_at,
        "snapshot_offsets": docs.snapshot_offsets,
        "told": docs.told,
        "dirty": docs.dirty,
    }
    return [name for name, kept in maps.items() if doc_id in kept]


def open_and_edit(docs: PartitionDocuments, doc_id: str, offset: int) -> int:
    opened = DocumentOpenRequested(
        doc_id=doc_id, user_id="u", reply_to="r", create=True, text="Mara was very angry."
    )
    docs.fold(opened, offset)
    edit = DocumentEdited(
        doc_id=doc_id,
        user_id="u",
        reply_to="r",
        version=1,
        changes=[DocChange(start_utf16=0, end_utf16=0, text="Then ")],
    )
    docs.fold(edit, offset + 1)
    doc = docs.docs[doc_id]
    pass_answers(doc, local_pass(doc), docs.told.setdefault(doc_id, {}))
    return offset + 2


def test_a_deleted_document_leaves_nothing_behind() -> None:
    docs = PartitionDocuments(max_chars=10_000)
    offset = open_and_edit(docs, "d1", 0)
    assert kept_about(docs, "d1") == ["docs", "created_at", "told", "dirty"]
    docs.fold(DocumentDeleted(doc_id="d1", user_id="u"), offset)
    assert kept_about(docs, "d1") == []
    assert docs.deleted == {"d1": "u"}  # until the next checkpoint writes its marker


def test_a_tombstone_of_the_snapshot_topic_leaves_nothing_behind() -> None:
    docs = PartitionDocuments(max_chars=10_000)
    open_and_edit(docs, "d1", 0)
    docs.load(to_snapshot(docs.docs["d1"], offset=1, created_at="2030-01-01T00:00:00.000Z"))
    docs.forget("d1")
    assert kept_about(docs, "d1") == []


def test_a_snapshots_place_is_forgotten_once_the_log_is_past_it() -> None:
    first = PartitionDocuments(max_chars=10_000)
    open_and_edit(first, "d1", 0)
    snapshot = to_snapshot(first.docs["d1"], offset=1, created_at="2030-01-01T00:00:00.000Z")
    taken_over = PartitionDocuments(max_chars=10_000)
    taken_over.load(snapshot)
    assert taken_over.snapshot_offsets == {"d1": 1}
    again = DocumentEdited(
        doc_id="d1",
        user_id="u",
        reply_to="r",
        version=1,
        changes=[DocChange(start_utf16=0, end_utf16=0, text="Then ")],
    )
    assert taken_over.fold(again, 1).answers == []  # in the snapshot already
    assert taken_over.snapshot_offsets == {"d1": 1}
    later = again.model_copy(update={"version": 2})
    assert taken_over.fold(later, 2).answers  # applied
    assert taken_over.snapshot_offsets == {}
