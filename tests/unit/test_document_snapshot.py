"""documents/snapshot.py: a document through its snapshot record is the same document
(the live set, and the pass bookkeeping read through ``ids`` and ``across``), and a live
suggestion reads the same as ``doc.suggestion`` and as the HTTP answer's item."""

from __future__ import annotations

from amplify_stream.documents.local_pass import local_pass
from amplify_stream.documents.snapshot import (
    as_heard,
    from_record,
    from_snapshot,
    suggestion_event,
    to_record,
    to_snapshot,
)
from amplify_stream.documents.state import DocumentState
from amplify_stream.events.documents import DocumentSuggestionFields
from amplify_stream.text.edits import Change

# Look-alike names across lines: a document-level finding beside the paragraphs' own.
TEXT = "Mara was very angry. Mara walked.\nMaria opened the door. Maria smiled.\nThe harbour."


def analyzed() -> DocumentState:
    doc = DocumentState("d1", "u1", TEXT)
    local_pass(doc)
    doc.edit(1, [Change(0, 0, "🌊 ")])  # spans past an astral character
    local_pass(doc)
    return doc


def test_a_document_through_its_snapshot_is_the_same_document() -> None:
    doc = analyzed()
    assert doc.ids >= len(doc.live) and doc.across <= set(doc.live)
    assert doc.across  # the document-level finding is there to keep
    snapshot = to_snapshot(doc, offset=7, created_at="2030-01-01T00:00:00.000Z")
    assert (snapshot.ids, snapshot.across) == (doc.ids, sorted(doc.across))
    again = from_snapshot(snapshot)
    assert again == doc
    assert (again.ids, again.across) == (doc.ids, doc.across)


def test_a_live_suggestion_through_its_record_is_the_same() -> None:
    for s in analyzed().live.values():
        assert from_record(to_record(s)) == s


def test_the_event_and_the_http_item_read_the_same() -> None:
    doc = analyzed()
    for s in doc.live.values():
        event = suggestion_event(doc, s)
        assert doc.text[event.start : event.end] == s.quote
        item = as_heard(s, event.start)
        fields = set(DocumentSuggestionFields.model_fields)
        assert event.model_dump(include=fields) == item.model_dump()
