"""The bodies of the HTTP routes (docs/protocol.md section 2), as pydantic models.

Handlers parse and answer with these, and the OpenAPI document is generated from them
(``openapi.py``), so the document cannot drift from what the routes do. Event payloads
live in ``amplify_stream/events/``; the models below reuse them where they nest.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal, cast

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    PlainSerializer,
    WithJsonSchema,
)

from amplify_stream.documents.snapshot import as_heard, from_record
from amplify_stream.events import ErrorInfo, Focus, InsightFields, SuggestionFields
from amplify_stream.events.common import ClientModel, FocusList
from amplify_stream.events.documents import (
    DismissedFinding,
    DocumentSuggestionFields,
    LiveSuggestionRecord,
    Word,
)
from amplify_stream.providers.local.rules import RULE_IDS, Rule, known
from amplify_stream.store.pages import MAX_PAGE_SIZE
from amplify_stream.store.preferences import Preferences
from amplify_stream.store.records import DocumentRecord, StoryRecord
from amplify_stream.store.stories import Status


def rfc3339(value: datetime) -> str:
    """RFC 3339 UTC with milliseconds and ``Z``, as every timestamp of the contract."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


Timestamp = Annotated[
    datetime,
    PlainSerializer(rfc3339, return_type=str),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "examples": ["2030-01-02T03:04:05.678Z"]}
    ),
]


class ApiModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    # Fields docs/protocol.md marks optional (``name?``): left out of the answer, not null.
    omit_when_none: ClassVar[frozenset[str]] = frozenset()

    def to_json(self) -> dict[str, Any]:
        """The answer's JSON: aliases applied, absent optional fields left out."""
        absent = {name for name in self.omit_when_none if getattr(self, name) is None}
        return self.model_dump(mode="json", by_alias=True, exclude=absent)


# The ids this service gives stories and documents (opaque to clients): anything else is
# none of the caller's, refused as such by the store's lookup.
ID_FORMAT: dict[str, JsonValue] = {"format": "uuid"}


class ClientQuery(ClientModel):
    """A query string. Lax where the bodies are strict, as every value arrives as a string
    (``limit=20`` is 20); parameters the contract does not name are ignored."""

    model_config = ConfigDict(extra="ignore", strict=False)


# ---------------------------------------------------------------- errors (section 3)


class ErrorDetail(BaseModel):
    code: str = Field(description="One of the error codes of docs/protocol.md.")
    message: str
    details: Any | None = Field(default=None, description="What was wrong (validation errors).")
    retryable: bool | None = Field(default=None, description="True when retrying can succeed.")


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer."""

    error: ErrorDetail


# ---------------------------------------------------------------- stories


class StoryLinks(ApiModel):
    self_: str = Field(alias="self")
    events: str
    audio: str

    @classmethod
    def of(cls, story_id: str) -> StoryLinks:
        base = f"/v1/stories/{story_id}"
        return cls(self_=base, events=f"{base}/events", audio=f"{base}/audio")


class StoryQueued(ApiModel):
    """``POST /v1/stories``: 202, the story was published."""

    story_id: str
    status: Literal["queued"] = "queued"
    links: StoryLinks


class StoryCancelling(ApiModel):
    """``POST /v1/stories/{id}/cancel``: 202, the cancel command was published."""

    story_id: str
    status: Literal["cancelling"] = "cancelling"


class StoryListQuery(ClientQuery):
    """The query of ``GET /v1/stories``."""

    limit: int = Field(default=20, ge=1, le=MAX_PAGE_SIZE, description="Stories per page.")
    before: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="The page starts after this story: the ``next`` of the previous page.",
        json_schema_extra=ID_FORMAT,
    )


class StorySummary(ApiModel):
    """A story in the list: the detail is at ``/v1/stories/{story_id}``."""

    omit_when_none = frozenset({"completed_at"})
    story_id: str
    status: Status
    title: str | None
    created_at: Timestamp
    completed_at: Timestamp | None = None

    @classmethod
    def of(cls, story: StoryRecord) -> StorySummary:
        return cls(
            story_id=story.id,
            status=cast(Status, story.status),
            title=story.title,
            created_at=story.created_at,
            completed_at=story.completed_at,
        )


class StoryList(ApiModel):
    """``GET /v1/stories``: the caller's stories, newest first."""

    stories: list[StorySummary]
    next: str | None = Field(description="``before`` of the next page; null on the last page.")

    def to_json(self) -> dict[str, Any]:
        return {"stories": [s.to_json() for s in self.stories], "next": self.next}


class AudioInfo(ApiModel):
    """The whole narration (``narration.completed``), downloadable at ``url``."""

    format: str
    duration_ms: float
    bytes: int
    sha256: str
    url: str


class StoryDetail(ApiModel):
    """``GET /v1/stories/{id}``: the story and its results as the outcomes left them."""

    omit_when_none = frozenset({"completed_at", "enhanced_text", "audio", "error"})
    story_id: str
    status: Status
    title: str | None
    created_at: Timestamp
    completed_at: Timestamp | None = None
    text: str
    enhanced_text: str | None = None
    suggestions: list[SuggestionFields]
    insights: list[InsightFields]
    audio: AudioInfo | None = None
    error: ErrorInfo | None = None

    @classmethod
    def of(cls, story: StoryRecord) -> StoryDetail:
        audio = None
        if story.audio_result is not None:
            result = story.audio_result
            audio = AudioInfo(
                format=result["format"],
                duration_ms=result["duration_ms"],
                bytes=result["bytes"],
                sha256=result["sha256"],
                url=StoryLinks.of(story.id).audio,
            )
        return cls(
            story_id=story.id,
            status=cast(Status, story.status),
            title=story.title,
            created_at=story.created_at,
            completed_at=story.completed_at,
            text=story.text,
            enhanced_text=story.enhanced_text,
            suggestions=[SuggestionFields.model_validate(s) for s in story.suggestions],
            insights=[InsightFields.model_validate(i) for i in story.insights],
            audio=audio,
            error=None if story.error is None else ErrorInfo.model_validate(story.error),
        )


# ---------------------------------------------------------------- live documents


class DocumentListQuery(ClientQuery):
    """The query of ``GET /v1/documents``."""

    limit: int = Field(default=20, ge=1, le=MAX_PAGE_SIZE, description="Documents per page.")
    before: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="The page starts after this document: the ``next`` of the previous page.",
        json_schema_extra=ID_FORMAT,
    )


class DocumentSummary(ApiModel):
    """A document in the list: the whole of it is at ``/v1/documents/{doc_id}``."""

    doc_id: str
    title: str | None
    version: int
    created_at: Timestamp
    updated_at: Timestamp = Field(description="When the document last moved to a new version.")

    @classmethod
    def of(cls, doc: DocumentRecord) -> DocumentSummary:
        return cls(
            doc_id=doc.doc_id,
            title=doc.title,
            version=doc.version,
            created_at=doc.created_at,
            updated_at=doc.updated_at,
        )


class DocumentList(ApiModel):
    """``GET /v1/documents``: the caller's documents, most recently changed first."""

    documents: list[DocumentSummary]
    next: str | None = Field(description="``before`` of the next page; null on the last page.")

    def to_json(self) -> dict[str, Any]:
        return {"documents": [d.to_json() for d in self.documents], "next": self.next}


class DocumentIgnores(ApiModel):
    dismissed: list[DismissedFinding] = Field(
        default_factory=list, description="The findings dismissed in this document."
    )
    rules_off: list[str] = Field(default_factory=list, description="Rules off here.")
    words: list[str] = Field(default_factory=list, description="Words vouched for here.")

    @classmethod
    def of(cls, record: dict[str, Any] | None) -> DocumentIgnores:
        """From the ``ignores`` of a snapshot (dismissed findings by key)."""
        record = record or {}
        return cls(
            dismissed=[
                DismissedFinding.model_validate(f) for f in record.get("dismissed", {}).values()
            ],
            rules_off=list(record.get("rules_off", [])),
            words=list(record.get("words", [])),
        )


class DocumentDetail(ApiModel):
    """``GET /v1/documents/{doc_id}``: the document as its owner's last snapshot left it."""

    doc_id: str
    title: str | None
    version: int
    text: str
    focus: list[Focus]
    suggestions: list[DocumentSuggestionFields] = Field(
        description="The live set at ``version``, in the order of the text."
    )
    updated_at: Timestamp
    ignores: DocumentIgnores = Field(
        description="What the writer said of this document's suggestions (its own; the "
        "user's preferences are at ``/v1/me/preferences``)."
    )

    @classmethod
    def of(cls, doc: DocumentRecord) -> DocumentDetail:
        live = sorted(
            (from_record(LiveSuggestionRecord.model_validate(s)) for s in doc.suggestions),
            key=lambda s: (s.start_utf16, s.end_utf16, s.id),
        )
        starts = _code_points(doc.text, [s.start_utf16 for s in live])
        return cls(
            doc_id=doc.doc_id,
            title=doc.title,
            version=doc.version,
            text=doc.text,
            focus=cast(list[Focus], list(doc.focus)),
            suggestions=[as_heard(s, starts[s.start_utf16]) for s in live],
            updated_at=doc.updated_at,
            ignores=DocumentIgnores.of(doc.ignores),
        )


def _code_points(text: str, offsets_utf16: list[int]) -> dict[int, int]:
    """The code point index of each UTF-16 offset (sorted) of ``text``, in one pass."""
    found: dict[int, int] = {}
    wanted = iter(offsets_utf16)
    target = next(wanted, None)
    units = 0
    for index, char in enumerate(text):
        while target is not None and target <= units:
            found[target] = index
            target = next(wanted, None)
        if target is None:
            return found
        units += 2 if ord(char) > 0xFFFF else 1
    while target is not None:
        found[target] = len(text)
        target = next(wanted, None)
    return found


# ---------------------------------------------------------------- health


class Health(ApiModel):
    """``GET /healthz``: the process runs."""

    status: Literal["ok"] = "ok"


class Readiness(ApiModel):
    """``GET /readyz``: 200 when every dependency answers, else 503."""

    status: Literal["ready", "unavailable"]
    checks: dict[str, str] = Field(
        description="``bus`` and ``store``: ``ok`` or why not; and the providers in use."
    )


class RuleExample(ApiModel):
    text: str
    start: int = Field(description="Where the flagged words start, in code points.")
    end: int


class RuleInfo(ApiModel):
    id: str = Field(description="What a suggestion of this rule carries as ``rule``.")
    focus: Focus
    looks_for: str = Field(description="What it flags, and why an editor would.")
    flagged: RuleExample = Field(description="A text it flags, at ``start``-``end``.")
    clean: str = Field(description="A text it leaves alone.")
    on_by_default: bool


class RuleList(ApiModel):
    """``GET /v1/rules``: the offline analyzer's rules (Gemini names them too, or its own
    ``model.*``)."""

    rules: list[RuleInfo]

    @classmethod
    def of(cls, rules: Iterable[Rule]) -> RuleList:
        return cls(rules=[rule_info(r) for r in rules])


def rule_info(rule: Rule) -> RuleInfo:
    text, start, end = rule.example
    return RuleInfo(
        id=rule.id,
        focus=rule.focus,
        looks_for=rule.looks_for,
        flagged=RuleExample(text=text, start=start, end=end),
        clean=rule.clean,
        on_by_default=rule.on_by_default,
    )


# ---------------------------------------------------------------- preferences

MAX_RULES_OFF = 50
MAX_WORDS = 1000


def _known_rule(rule_id: str) -> str:
    if not known(rule_id):
        raise ValueError(f"unknown rule {rule_id!r} (GET /v1/rules lists them)")
    return rule_id


KnownRule = Annotated[
    str,
    AfterValidator(_known_rule),
    WithJsonSchema({"type": "string", "enum": list(RULE_IDS)}),
]


class PreferencesBody(ClientModel):
    """``PUT /v1/me/preferences``: the user's preferences, whole."""

    rules_off: list[KnownRule] = Field(
        max_length=MAX_RULES_OFF, description="Rules that never fire for you (``GET /v1/rules``)."
    )
    words: list[Word] = Field(
        max_length=MAX_WORDS, description="Words and names you vouch for, as spelled."
    )
    focus: FocusList | None = Field(
        default=None, description="What a document or story opened without one reads; null: all."
    )
    revision: int | None = Field(
        default=None,
        ge=0,
        description="The revision this change was made from (GET's): when the preferences "
        "changed since, nothing is replaced and the answer is 409 ``conflict``.",
    )


class PreferencesView(ApiModel):
    """``GET /v1/me/preferences``."""

    rules_off: list[str]
    words: list[str]
    focus: list[Focus] | None
    revision: int = Field(description="Moves by one with each change.")
    updated_at: Timestamp | None

    @classmethod
    def of(cls, prefs: Preferences) -> PreferencesView:
        return cls(
            rules_off=list(prefs.rules_off),
            words=list(prefs.words),
            focus=None if prefs.focus is None else cast(list[Focus], list(prefs.focus)),
            revision=prefs.revision,
            updated_at=prefs.updated_at,
        )
