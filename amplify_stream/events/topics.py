"""The records of the internal topics: commands, narration segments, outcomes, dead letters."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from amplify_stream.events.client import StoryOptions
from amplify_stream.events.common import ErrorInfo, StoryStatus, Usage, _Model, now_rfc3339
from amplify_stream.events.documents import (
    DocumentAnalyzedOutcome,
    SuggestionFeedbackOutcome,
    UserIgnores,
)
from amplify_stream.events.stream import InsightFields, SuggestionFields

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
    # The user's preferences when it was accepted: what its suggestions must not be.
    ignores: UserIgnores | None = None


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


# Every record of the outcome topic. ``document.analyzed`` (section 6) is a document's, not
# a story's: keyed by ``doc_id``, without ``story_id`` or ``attempt`` (not an ``Outcome``);
# readers that fold stories skip it.
OutcomeEvent = Annotated[
    EnhancementCompletedOutcome
    | EnhancementFailedOutcome
    | NarrationCompletedOutcome
    | NarrationFailedOutcome
    | StoryCompletedOutcome
    | DocumentAnalyzedOutcome
    | SuggestionFeedbackOutcome,
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
