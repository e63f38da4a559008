"""One pydantic model per event of docs/protocol.md: the single source of the wire contract.

The JSON Schemas in ``docs/schemas/`` are generated from these models
(``amplify-stream schemas``); never edit those files by hand.

Values on the topics carry no ``cursor``: a cursor is the record's own position, so
the gateway adds it when it relays a record (see ``with_cursor``).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

SCHEMA_VERSION = "1"

# The craft areas a suggestion is about (a story's ``focus`` picks among them).
Focus = Literal["plot", "character", "dialogue", "setting"]
ALL_FOCUS: tuple[Focus, ...] = ("plot", "character", "dialogue", "setting")


def now_rfc3339() -> str:
    """RFC 3339 UTC with milliseconds, as the contract requires."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ms_since(at: str) -> float:
    """Milliseconds from an event's ``at`` until now (never negative: clocks differ)."""
    started = datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()
    return max(0.0, (time.time() - started) * 1000)


StoryStatus = Literal["completed", "failed", "cancelled"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class Usage(_Model):
    input_tokens: int = 0
    output_tokens: int = 0


class ErrorInfo(_Model):
    code: str
    message: str


# ---------------------------------------------------------------- client -> server


class StoryOptions(_Model):
    """The body of ``story.submit`` and ``POST /v1/stories`` (limits checked by the gateway)."""

    # Strict: a wrong JSON type is refused, not coerced ("rewrite": "no" is not false).
    model_config = ConfigDict(extra="forbid", strict=True)
    request_id: str | None = Field(default=None, max_length=200)
    title: str | None = None
    text: str = Field(min_length=1)
    focus: list[Focus] = Field(default_factory=lambda: list(ALL_FOCUS), min_length=1)
    rewrite: bool = True
    audio: bool = True
    voice: str | None = Field(default=None, max_length=100)
    idempotency_key: str | None = Field(default=None, max_length=200)


class StorySubmit(StoryOptions):
    type: Literal["story.submit"]


class StoryResume(_Model):
    type: Literal["story.resume"]
    story_id: str = Field(max_length=100)
    cursor: str | None = Field(default=None, max_length=100)
    request_id: str | None = Field(default=None, max_length=200)


class StoryCancel(_Model):
    type: Literal["story.cancel"]
    story_id: str = Field(max_length=100)
    request_id: str | None = Field(default=None, max_length=200)


class Ping(_Model):
    type: Literal["ping"]
    request_id: str | None = Field(default=None, max_length=200)


ClientMessage = Annotated[
    StorySubmit | StoryResume | StoryCancel | Ping, Field(discriminator="type")
]
client_message_adapter: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)


# ---------------------------------------------------------------- server -> client


class StoryEvent(_Model):
    """Every story event: on the stream topic, and relayed to sockets with a cursor."""

    # The owner travels on the topics (docs/protocol.md section 4); it is only ever relayed
    # to that owner.
    model_config = ConfigDict(extra="forbid")
    type: str
    story_id: str
    user_id: str | None = None
    cursor: str | None = None
    at: str = Field(default_factory=now_rfc3339)


class StoryAccepted(StoryEvent):
    type: Literal["story.accepted"] = "story.accepted"
    request_id: str | None = None
    status: Literal["queued"] = "queued"


class EnhancementStarted(StoryEvent):
    type: Literal["enhancement.started"] = "enhancement.started"
    provider: str
    model: str
    attempt: int


class EnhancementDelta(StoryEvent):
    type: Literal["enhancement.delta"] = "enhancement.delta"
    text: str
    attempt: int


class EnhancementReset(StoryEvent):
    type: Literal["enhancement.reset"] = "enhancement.reset"
    attempt: int
    reason: str


class SuggestionFields(_Model):
    id: str
    focus: Focus
    quote: str
    start: int | None
    end: int | None
    start_utf16: int | None
    end_utf16: int | None
    message: str
    replacement: str | None = None


class Suggestion(StoryEvent, SuggestionFields):
    type: Literal["suggestion"] = "suggestion"
    # The enhancement attempt it was found in (dropped with that attempt on a reset).
    attempt: int | None = None


class InsightFields(_Model):
    focus: Focus
    summary: str
    metrics: dict[str, float] | None = None


class Insight(StoryEvent, InsightFields):
    type: Literal["insight"] = "insight"
    attempt: int | None = None


class EnhancementCompleted(StoryEvent):
    type: Literal["enhancement.completed"] = "enhancement.completed"
    text: str
    suggestions: int
    usage: Usage
    attempt: int | None = None


class AudioStarted(StoryEvent):
    type: Literal["audio.started"] = "audio.started"
    format: Literal["audio/mpeg"] = "audio/mpeg"
    voice: str
    provider: str
    attempt: int = 1


class AudioReset(StoryEvent):
    """An earlier narration attempt was abandoned: drop its audio (like enhancement.reset)."""

    type: Literal["audio.reset"] = "audio.reset"
    attempt: int
    reason: str


class AudioChunk(StoryEvent):
    type: Literal["audio.chunk"] = "audio.chunk"
    index: int
    data: str
    # The narration attempt (as ``audio.started``/``audio.reset`` count them).
    attempt: int | None = None


class AudioWord(StoryEvent):
    type: Literal["audio.word"] = "audio.word"
    text: str
    offset_ms: float
    duration_ms: float
    start: int | None = None
    end: int | None = None
    attempt: int | None = None


class AudioCompleted(StoryEvent):
    type: Literal["audio.completed"] = "audio.completed"
    duration_ms: float
    bytes: int
    sha256: str
    url: str
    attempt: int | None = None


class StoryCompleted(StoryEvent):
    type: Literal["story.completed"] = "story.completed"
    status: StoryStatus
    error: ErrorInfo | None = None


class ErrorEvent(_Model):
    """``error``: on a story's stream it carries ``story_id`` and a cursor."""

    type: Literal["error"] = "error"
    code: str
    message: str
    retryable: bool = False
    # Seconds to wait before trying again (``rate_limited``), as HTTP's Retry-After.
    retry_after: int | None = None
    request_id: str | None = None
    story_id: str | None = None
    user_id: str | None = None
    cursor: str | None = None
    at: str = Field(default_factory=now_rfc3339)


class Pong(_Model):
    type: Literal["pong"] = "pong"
    request_id: str | None = None
    at: str = Field(default_factory=now_rfc3339)


# ---------------------------------------------------------------- commands topic


class HistoryStart(_Model):
    """Where a story's records start on the stream and outcome topics: a worker that may
    have run the story before reads its history from there (attempts, results)."""

    stream_offset: int | None = None
    outcomes_offset: int | None = None


class StorySubmitted(StoryOptions, HistoryStart):
    type: Literal["story.submitted"] = "story.submitted"
    story_id: str
    user_id: str
    at: str = Field(default_factory=now_rfc3339)


class StoryCancelled(_Model):
    type: Literal["story.cancelled"] = "story.cancelled"
    story_id: str
    user_id: str
    at: str = Field(default_factory=now_rfc3339)


Command = Annotated[StorySubmitted | StoryCancelled, Field(discriminator="type")]
command_adapter: TypeAdapter[Command] = TypeAdapter(Command)


# ---------------------------------------------------------------- segments topic (internal)


class NarrationSegment(HistoryStart):
    """Completed sentences of the text to narrate, from the enhancer to the narrator."""

    type: Literal["narration.segment"] = "narration.segment"
    story_id: str
    user_id: str
    at: str = Field(default_factory=now_rfc3339)
    attempt: int
    submitted_at: str
    index: int
    text: str
    start: int  # offset of ``text`` in the narrated text
    voice: str | None = None


class NarrationEnd(HistoryStart):
    """No more segments: how the enhancement ended (the narrator ends the story)."""

    type: Literal["narration.end"] = "narration.end"
    story_id: str
    user_id: str
    at: str = Field(default_factory=now_rfc3339)
    attempt: int
    submitted_at: str
    status: StoryStatus
    error: ErrorInfo | None = None
    segments: int


class NarrationCancelled(_Model):
    """The story was cancelled: stop speaking it (the enhancer forwards the command)."""

    type: Literal["narration.cancelled"] = "narration.cancelled"
    story_id: str
    user_id: str
    at: str = Field(default_factory=now_rfc3339)


SegmentEvent = Annotated[
    NarrationSegment | NarrationEnd | NarrationCancelled, Field(discriminator="type")
]
segment_adapter: TypeAdapter[SegmentEvent] = TypeAdapter(SegmentEvent)


# ---------------------------------------------------------------- outcomes topic


class Outcome(_Model):
    type: str
    story_id: str
    user_id: str
    attempt: int
    at: str = Field(default_factory=now_rfc3339)


class EnhancementTimings(_Model):
    queue_ms: float
    first_token_ms: float | None
    total_ms: float
    # An addition: from submission to the first suggestion (None: there was none).
    first_suggestion_ms: float | None = None


class EnhancementCompletedOutcome(Outcome):
    type: Literal["enhancement.completed"] = "enhancement.completed"
    provider: str
    model: str
    input_chars: int
    text: str
    suggestions: list[SuggestionFields]
    insights: list[InsightFields]
    usage: Usage
    timings: EnhancementTimings


class EnhancementFailedOutcome(Outcome):
    type: Literal["enhancement.failed"] = "enhancement.failed"
    error: ErrorInfo
    attempts: int


class NarrationTimings(_Model):
    first_audio_ms: float | None
    total_ms: float


class NarrationCompletedOutcome(Outcome):
    type: Literal["narration.completed"] = "narration.completed"
    provider: str
    voice: str
    format: Literal["audio/mpeg"] = "audio/mpeg"
    duration_ms: float
    bytes: int
    sha256: str
    chunks: int
    words: int
    timings: NarrationTimings


class NarrationFailedOutcome(Outcome):
    type: Literal["narration.failed"] = "narration.failed"
    error: ErrorInfo


class StoryTimings(_Model):
    total_ms: float


class StoryCompletedOutcome(Outcome):
    type: Literal["story.completed"] = "story.completed"
    status: StoryStatus
    error: ErrorInfo | None = None
    timings: StoryTimings


OutcomeEvent = Annotated[
    EnhancementCompletedOutcome
    | EnhancementFailedOutcome
    | NarrationCompletedOutcome
    | NarrationFailedOutcome
    | StoryCompletedOutcome,
    Field(discriminator="type"),
]
outcome_adapter: TypeAdapter[OutcomeEvent] = TypeAdapter(OutcomeEvent)


class DeadLetter(_Model):
    type: Literal["dead_letter"] = "dead_letter"
    story_id: str | None = None
    user_id: str | None = None
    at: str = Field(default_factory=now_rfc3339)
    source_topic: str
    partition: int
    offset: int
    error: str
    payload: str  # the original bytes, base64


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

# Every model whose schema is published, by file name.
SCHEMA_MODELS: dict[str, type[BaseModel]] = {
    "client.story.submit": StorySubmit,
    "client.story.resume": StoryResume,
    "client.story.cancel": StoryCancel,
    "client.ping": Ping,
    **{f"stream.{m.model_fields['type'].default}": m for m in STREAM_EVENTS},
    "stream.pong": Pong,
    "stories.story.submitted": StorySubmitted,
    "stories.story.cancelled": StoryCancelled,
    "segments.narration.segment": NarrationSegment,
    "segments.narration.end": NarrationEnd,
    "segments.narration.cancelled": NarrationCancelled,
    "outcomes.enhancement.completed": EnhancementCompletedOutcome,
    "outcomes.enhancement.failed": EnhancementFailedOutcome,
    "outcomes.narration.completed": NarrationCompletedOutcome,
    "outcomes.narration.failed": NarrationFailedOutcome,
    "outcomes.story.completed": StoryCompletedOutcome,
    "dlq.dead_letter": DeadLetter,
}


def encode(event: BaseModel) -> bytes:
    """Compact JSON for a topic value (no cursor: the record's position is its cursor)."""
    return event.model_dump_json(exclude={"cursor"}).encode()


ATTEMPT_HEADER = "attempt"


def stage_of(event_type: str) -> str:
    """Whose attempts an event's ``attempt`` counts: the narration's for ``audio.*``, the
    enhancement's for the rest (narration segments included: the enhancer writes them)."""
    return "narration" if event_type.startswith("audio.") else "enhancement"


def headers_for(event_type: str, *, attempt: int | None = None) -> list[tuple[str, bytes]]:
    """The record headers of docs/protocol.md section 4; with ``attempt``, also
    ``attempt: <stage>:<n>``, so a reader (the gateway's relay) can drop a superseded
    attempt's records without parsing them."""
    headers = [
        ("event-type", event_type.encode()),
        ("content-type", b"application/json"),
        ("schema-version", SCHEMA_VERSION.encode()),
    ]
    if attempt is not None:
        headers.append((ATTEMPT_HEADER, f"{stage_of(event_type)}:{attempt}".encode()))
    return headers


def with_cursor(value: bytes, cursor: str) -> bytes:
    """Add ``"cursor"`` to a compact JSON object written by ``encode``, without re-parsing it.

    The relay is the hottest path of the service; splicing bytes keeps it free of JSON work.
    """
    return value[:-1] + b',"cursor":"' + cursor.encode() + b'"}'


def schema_documents() -> dict[str, dict[str, Any]]:
    return {name: model.model_json_schema() for name, model in SCHEMA_MODELS.items()}
