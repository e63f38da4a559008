"""What a client sends on the socket (docs/protocol.md sections 1 and 6)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, TypeAdapter

from amplify_stream.events.common import ALL_FOCUS, Focus, _Model
from amplify_stream.events.documents import DocClose, DocEdit, DocOpen

# The live documents' frames (section 6) live with the rest of the documents' records;
# that module needs only ``common``, so importing it here makes no cycle.

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
    StorySubmit | StoryResume | StoryCancel | Ping | DocOpen | DocEdit | DocClose,
    Field(discriminator="type"),
]
client_message_adapter: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)
