"""What a client sends on the socket (docs/protocol.md sections 1 and 6)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from amplify_stream.events.common import ALL_FOCUS, ClientModel, FocusList
from amplify_stream.events.documents import DocClose, DocDismiss, DocEdit, DocOpen, DocWord

# The live documents' frames (section 6) live with the rest of the documents' records;
# that module needs only ``common``, so importing it here makes no cycle.

# ---------------------------------------------------------------- client -> server


class StoryOptions(ClientModel):
    """The body of ``story.submit`` and ``POST /v1/stories`` (the limits that are settings
    are checked by the gateway: ``events/text_limits.py``)."""

    request_id: str | None = Field(default=None, max_length=200)
    title: str | None = None
    text: str = Field(min_length=1)
    focus: FocusList = Field(default_factory=lambda: list(ALL_FOCUS))
    rewrite: bool = True
    audio: bool = True
    voice: str | None = Field(default=None, max_length=100)
    idempotency_key: str | None = Field(default=None, max_length=200)


class StorySubmit(StoryOptions):
    type: Literal["story.submit"]


class StoryResume(ClientModel):
    type: Literal["story.resume"]
    story_id: str = Field(max_length=100)
    cursor: str | None = Field(default=None, max_length=100)
    request_id: str | None = Field(default=None, max_length=200)


class StoryCancel(ClientModel):
    type: Literal["story.cancel"]
    story_id: str = Field(max_length=100)
    request_id: str | None = Field(default=None, max_length=200)


class Ping(ClientModel):
    type: Literal["ping"]
    request_id: str | None = Field(default=None, max_length=200)


ClientMessage = Annotated[
    StorySubmit
    | StoryResume
    | StoryCancel
    | Ping
    | DocOpen
    | DocEdit
    | DocClose
    | DocDismiss
    | DocWord,
    Field(discriminator="type"),
]
client_message_adapter: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)
