"""How events travel: the JSON of a topic value, record headers, cursors, schemas."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from amplify_stream.events.client import (
    Ping,
    StoryCancel,
    StoryResume,
    StorySubmit,
)
from amplify_stream.events.common import SCHEMA_VERSION
from amplify_stream.events.documents import (
    DOC_EVENTS,
    DocClose,
    DocDismiss,
    DocEdit,
    DocOpen,
    DocumentAnalyzedOutcome,
    DocumentDeleted,
    DocumentDismissed,
    DocumentEdited,
    DocumentOpenRequested,
    DocumentPreferences,
    DocumentSnapshot,
    DocumentWord,
    DocWord,
    SuggestionFeedbackOutcome,
)
from amplify_stream.events.stream import (
    AudioChunk,
    AudioCompleted,
    AudioReset,
    AudioStarted,
    AudioWord,
    EnhancementCompleted,
    EnhancementDelta,
    EnhancementReset,
    EnhancementStarted,
    ErrorEvent,
    Insight,
    Pong,
    StoryAccepted,
    StoryCompleted,
    Suggestion,
)
from amplify_stream.events.topics import (
    DeadLetter,
    EnhancementCompletedOutcome,
    EnhancementFailedOutcome,
    NarrationCancelled,
    NarrationCompletedOutcome,
    NarrationEnd,
    NarrationFailedOutcome,
    NarrationSegment,
    StoryCancelled,
    StoryCompletedOutcome,
    StorySubmitted,
)

# ---------------------------------------------------------------- encoding

STREAM_EVENTS: tuple[type[BaseModel], ...] = (
    StoryAccepted,
    EnhancementStarted,
    EnhancementDelta,
    EnhancementReset,
    Suggestion,
    Insight,
    EnhancementCompleted,
    AudioStarted,
    AudioReset,
    AudioChunk,
    AudioWord,
    AudioCompleted,
    StoryCompleted,
    ErrorEvent,
)
TERMINAL_EVENT = "story.completed"

# Every model whose schema is published, by file name: ``<channel>.<type>``, the channel
# being the socket's side (``client``, ``stream``) or the topic's name without its prefix
# and version (``document-snapshots`` is ``amplify.document-snapshots.v1``).
SCHEMA_MODELS: dict[str, type[BaseModel]] = {
    "client.story.submit": StorySubmit,
    "client.story.resume": StoryResume,
    "client.story.cancel": StoryCancel,
    "client.ping": Ping,
    "client.doc.open": DocOpen,
    "client.doc.edit": DocEdit,
    "client.doc.close": DocClose,
    "client.doc.dismiss": DocDismiss,
    "client.doc.word": DocWord,
    **{f"stream.{m.model_fields['type'].default}": m for m in STREAM_EVENTS},
    "stream.pong": Pong,
    # Live documents' events (section 6): on the stream topic too, keyed by doc_id.
    **{f"stream.{m.model_fields['type'].default}": m for m in DOC_EVENTS},
    "stories.story.submitted": StorySubmitted,
    "stories.story.cancelled": StoryCancelled,
    "documents.document.open": DocumentOpenRequested,
    "documents.document.edited": DocumentEdited,
    "documents.document.deleted": DocumentDeleted,
    "documents.document.dismissed": DocumentDismissed,
    "documents.document.word": DocumentWord,
    "documents.document.preferences": DocumentPreferences,
    "document-snapshots.document.snapshot": DocumentSnapshot,
    "segments.narration.segment": NarrationSegment,
    "segments.narration.end": NarrationEnd,
    "segments.narration.cancelled": NarrationCancelled,
    "outcomes.enhancement.completed": EnhancementCompletedOutcome,
    "outcomes.enhancement.failed": EnhancementFailedOutcome,
    "outcomes.narration.completed": NarrationCompletedOutcome,
    "outcomes.narration.failed": NarrationFailedOutcome,
    "outcomes.story.completed": StoryCompletedOutcome,
    "outcomes.document.analyzed": DocumentAnalyzedOutcome,
    "outcomes.suggestion.feedback": SuggestionFeedbackOutcome,
    "dlq.dead_letter": DeadLetter,
}


def encode(event: BaseModel) -> bytes:
    """Compact JSON for a topic value (no cursor: the record's position is its cursor)."""
    return event.model_dump_json(exclude={"cursor"}).encode()


# The record headers of docs/protocol.md section 4 (and section 6's ``reply-to``): every
# writer and reader of the topics names them through these.
EVENT_TYPE_HEADER = "event-type"
CONTENT_TYPE_HEADER = "content-type"
SCHEMA_VERSION_HEADER = "schema-version"
ATTEMPT_HEADER = "attempt"
# On a live document's stream record that answers one socket: that socket's id.
REPLY_TO_HEADER = "reply-to"
RECORD_CONTENT_TYPE = "application/json"


def stage_of(event_type: str) -> str:
    """Whose attempts an event's ``attempt`` counts: the narration's for ``audio.*``, the
    enhancement's for the rest (narration segments included: the enhancer writes them)."""
    return "narration" if event_type.startswith("audio.") else "enhancement"


def headers_for(
    event_type: str, *, attempt: int | None = None, reply_to: str | None = None
) -> list[tuple[str, bytes]]:
    """The record headers of docs/protocol.md section 4; with ``attempt``, also
    ``attempt: <stage>:<n>``, so a reader (the gateway's relay) can drop a superseded
    attempt's records without parsing them; with ``reply_to``, the ``reply-to`` of an
    answer meant for one socket (section 6)."""
    headers = [
        (EVENT_TYPE_HEADER, event_type.encode()),
        (CONTENT_TYPE_HEADER, RECORD_CONTENT_TYPE.encode()),
        (SCHEMA_VERSION_HEADER, SCHEMA_VERSION.encode()),
    ]
    if attempt is not None:
        headers.append((ATTEMPT_HEADER, f"{stage_of(event_type)}:{attempt}".encode()))
    if reply_to is not None:
        headers.append((REPLY_TO_HEADER, reply_to.encode()))
    return headers


def with_cursor(value: bytes, cursor: str) -> bytes:
    """Add ``"cursor"`` to a compact JSON object written by ``encode``, without re-parsing it.

    The relay is the hottest path of the service; splicing bytes keeps it free of JSON work.
    """
    return value[:-1] + b',"cursor":"' + cursor.encode() + b'"}'


def schema_documents() -> dict[str, dict[str, Any]]:
    return {name: model.model_json_schema() for name, model in SCHEMA_MODELS.items()}
