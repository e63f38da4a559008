"""A live document to and from its wire models, in one place: its state to and from its
snapshot record (``DocumentSnapshot``), and each live suggestion to and from the
owner's record of it (``LiveSuggestionRecord``, spans in UTF-16) and as a client hears it
(``DocumentSuggestionFields``: spans in code points and UTF-16; ``doc.suggestion`` and the
document's HTTP answer)."""

from __future__ import annotations

from amplify_stream.documents.ignores import Ignores
from amplify_stream.documents.state import DocumentState, LiveSuggestion
from amplify_stream.events.documents import (
    DocSuggestion,
    DocumentSnapshot,
    DocumentSuggestionFields,
    LiveSuggestionRecord,
)
from amplify_stream.text.edits import code_point_index


def to_snapshot(doc: DocumentState, *, offset: int, created_at: str) -> DocumentSnapshot:
    return DocumentSnapshot(
        doc_id=doc.doc_id,
        user_id=doc.user_id,
        created_at=created_at,
        offset=offset,
        title=doc.title,
        focus=list(doc.focus),
        text=doc.text,
        version=doc.version,
        suggestions=[to_record(s) for s in doc.live.values()],
        current=list(doc.current),
        ids=doc.ids,
        across=sorted(doc.across),
        analyzed_version=doc.analyzed_version,
        ignores=doc.ignores.record(),
    )


def from_snapshot(snapshot: DocumentSnapshot) -> DocumentState:
    doc = DocumentState(
        snapshot.doc_id,
        snapshot.user_id,
        snapshot.text,
        title=snapshot.title,
        focus=tuple(snapshot.focus),
        version=snapshot.version,
        live={s.id: from_record(s) for s in snapshot.suggestions},
        current=list(snapshot.current),
        analyzed_version=snapshot.analyzed_version,
        ignores=Ignores.from_record(snapshot.ignores),
    )
    doc.restore(ids=snapshot.ids, across=snapshot.across)
    return doc


def to_record(s: LiveSuggestion) -> LiveSuggestionRecord:
    return LiveSuggestionRecord(
        id=s.id,
        focus=s.focus,
        quote=s.quote,
        message=s.message,
        replacement=s.replacement,
        start_utf16=s.start_utf16,
        end_utf16=s.end_utf16,
        rule=s.rule,
    )


def from_record(r: LiveSuggestionRecord) -> LiveSuggestion:
    return LiveSuggestion(
        r.id, r.focus, r.quote, r.message, r.replacement, r.start_utf16, r.end_utf16, r.rule
    )


def as_heard(s: LiveSuggestion, start: int) -> DocumentSuggestionFields:
    """``s`` as a client hears it, ``start`` its start in code points in the text it is
    live in (the caller finds it: one suggestion, or many in one walk of the text)."""
    return DocumentSuggestionFields(
        id=s.id,
        focus=s.focus,
        quote=s.quote,
        start=start,
        end=start + len(s.quote),
        start_utf16=s.start_utf16,
        end_utf16=s.end_utf16,
        message=s.message,
        replacement=s.replacement,
        rule=s.rule,
    )


def suggestion_event(doc: DocumentState, s: LiveSuggestion) -> DocSuggestion:
    """``s`` as ``doc.suggestion`` at the document's version."""
    heard = as_heard(s, code_point_index(doc.text, s.start_utf16))
    return DocSuggestion(doc_id=doc.doc_id, version=doc.version, **heard.model_dump())
