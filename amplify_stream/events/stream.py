"""What a client hears: the story events of the stream topic and the socket."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from amplify_stream.events.common import ErrorInfo, Focus, StoryStatus, Usage, _Model, now_rfc3339

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
    # The rule that found it (``GET /v1/rules``; ``model.*`` for what Gemini found of its
    # own); None where the provider named none.
    rule: str | None = None


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
    # About a live document (section 6): which, and for version_conflict its version now.
    doc_id: str | None = None
    version: int | None = None
    at: str = Field(default_factory=now_rfc3339)


class Pong(_Model):
    type: Literal["pong"] = "pong"
    request_id: str | None = None
    at: str = Field(default_factory=now_rfc3339)
