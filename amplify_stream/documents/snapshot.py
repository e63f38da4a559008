"""A live document's state to and from its snapshot record (``DocumentSnapshot``), and
its live suggestions as the events a client hears (spans in code points and UTF-16)."""

from __future__ import annotations

from amplify_stream.documents.state import DocumentState, LiveSuggestion
from amplify_stream.events.documents import DocSuggestion, DocumentSnapshot, LiveSuggestionRecord
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
        suggestions=[
            LiveSuggestionRecord(
                id=s.id,
                focus=s.focus,
                quote=s.quote,
                message=s.message,
                replacement=s.replacement,
                start_utf16=s.start_utf16,
                end_utf16=s.end_utf16,
            )
            for s in doc.live.values()
        ],
        current=list(doc.current),
        ids=doc.ids,
        across=sorted(doc.across),
        analyzed_version=doc.analyzed_version,
    )


def from_snapshot(snapshot: DocumentSnapshot) -> DocumentState:
    doc = DocumentState(
        snapshot.doc_id,
        snapshot.user_id,
        snapshot.text,
        title=snapshot.title,
        focus=tuple(snapshot.focus),
        version=snapshot.version,
        live={
            s.id: LiveSuggestion(
                s.id, s.focus, s.quote, s.message, s.replacement, s.start_utf16, s.end_utf16
            )
            for s in snapshot.suggestions
        },
        current=list(snapshot.current),
        analyzed_version=snapshot.analyzed_version,
    )
    doc.restore(ids=snapshot.ids, across=snapshot.across)
    return doc


def suggestion_event(doc: DocumentState, s: LiveSuggestion) -> DocSuggestion:
    """``s`` as ``doc.suggestion`` at the document's version."""
    start = code_point_index(doc.text, s.start_utf16)
    return DocSuggestion(
        doc_id=doc.doc_id,
        version=doc.version,
        id=s.id,
        focus=s.focus,
        quote=s.quote,
        start=start,
        end=start + len(s.quote),
        start_utf16=s.start_utf16,
        end_utf16=s.end_utf16,
        message=s.message,
        replacement=s.replacement,
    )
