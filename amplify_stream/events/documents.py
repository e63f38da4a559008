"""Live documents (docs/protocol.md section 6): what a client sends and hears about one,
the commands of its log (``amplify.documents.v1``), its owner's snapshots, and the
``document.analyzed`` outcome."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from amplify_stream.events.common import ClientModel, Focus, FocusList, _Model, now_rfc3339

# ---------------------------------------------------------------- client -> server


class DocChange(ClientModel):
    """Replaces ``[start_utf16, end_utf16)`` of the text the change before it left."""

    start_utf16: int = Field(ge=0)
    end_utf16: int = Field(ge=0)
    text: str


class DocOpen(ClientModel):
    type: Literal["doc.open"]
    request_id: str | None = Field(default=None, max_length=200)
    # Absent: a new document (``text``, ``title``, ``focus`` its first state).
    doc_id: str | None = Field(default=None, max_length=100)
    text: str | None = None
    title: str | None = Field(default=None, max_length=200)
    focus: FocusList | None = None


class DocEdit(ClientModel):
    type: Literal["doc.edit"]
    request_id: str | None = Field(default=None, max_length=200)
    doc_id: str = Field(max_length=100)
    version: int = Field(ge=1)
    changes: list[DocChange] = Field(min_length=1)


class DocClose(ClientModel):
    type: Literal["doc.close"]
    request_id: str | None = Field(default=None, max_length=200)
    doc_id: str = Field(max_length=100)


# The writer's say (docs/protocol.md section 6, "The writer's say").
DismissScope = Literal["suggestion", "document", "everywhere"]
WordScope = Literal["document", "everywhere"]
MAX_WORD_CHARS = 64
# A rule id as the catalogue spells them (``plot.passive``, ``model.dialogue``).
RULE_PATTERN = r"^[a-z]+\.[a-z_]+$"
# A vouched word: no control characters, no space at either end (spelled in ASCII
# ranges, so every regex dialect a client validates with reads it alike).
WORD_PATTERN = r"^[^\x00-\x20\x7f](?:[^\x00-\x1f\x7f]*[^\x00-\x20\x7f])?$"
Word = Annotated[str, Field(min_length=1, max_length=MAX_WORD_CHARS, pattern=WORD_PATTERN)]
RuleId = Annotated[str, Field(max_length=100, pattern=RULE_PATTERN)]


class DocDismiss(ClientModel):
    type: Literal["doc.dismiss"]
    request_id: str | None = Field(default=None, max_length=200)
    doc_id: str = Field(max_length=100)
    id: str | None = Field(default=None, max_length=100)
    rule: RuleId | None = None
    scope: DismissScope = "suggestion"
    undo: bool = False


class DocWord(ClientModel):
    type: Literal["doc.word"]
    request_id: str | None = Field(default=None, max_length=200)
    doc_id: str = Field(max_length=100)
    word: Word
    scope: WordScope = "document"
    undo: bool = False


# ---------------------------------------------------------------- server -> client


class DocEvent(_Model):
    """Every document event: on the stream topic (key ``doc_id``) and on the socket."""

    type: str
    doc_id: str
    version: int
    at: str = Field(default_factory=now_rfc3339)


class DocOpened(DocEvent):
    type: Literal["doc.opened"] = "doc.opened"
    request_id: str | None = None
    text: str
    title: str | None = None
    focus: list[Focus]


class DocAck(DocEvent):
    type: Literal["doc.ack"] = "doc.ack"
    # An addition: the edit's own request_id, when it had one.
    request_id: str | None = None


class DocumentSuggestionFields(_Model):
    """A live suggestion: its span in the text of the document's ``version``, in code points
    (``start``, ``end``) and in UTF-16 units (``start_utf16``, ``end_utf16``)."""

    id: str
    focus: Focus
    quote: str
    start: int
    end: int
    start_utf16: int
    end_utf16: int
    message: str
    replacement: str | None = None
    # The rule that found it (``GET /v1/rules``; ``model.*`` for what Gemini found of its
    # own); None where the provider named none.
    rule: str | None = None


# The fields after the envelope's (the schema's order): the fields' class comes first.
class DocSuggestion(DocumentSuggestionFields, DocEvent):
    type: Literal["doc.suggestion"] = "doc.suggestion"


class DocRetracted(DocEvent):
    type: Literal["doc.retracted"] = "doc.retracted"
    ids: list[str]


class DocInsight(DocEvent):
    type: Literal["doc.insight"] = "doc.insight"
    focus: Focus
    summary: str
    metrics: dict[str, float] | None = None


class DocAnalyzed(DocEvent):
    type: Literal["doc.analyzed"] = "doc.analyzed"
    suggestions: int
    paragraphs: int
    reanalyzed: int


class DismissedFinding(_Model):
    """A finding the writer dismissed: what it was when they did (``id`` is the
    suggestion's id then; the same finding found again later has another). ``quote`` and
    ``message`` are cut to ``SHOWN_CHARS``: they are for showing (the key is a hash), and
    a document's snapshot holds up to 500 of them."""

    id: str
    rule: str | None = None
    focus: Focus
    quote: str
    message: str


SHOWN_CHARS = 200


class UserIgnores(_Model):
    rules_off: list[str] = Field(default_factory=list)
    words: list[str] = Field(default_factory=list)


class DocIgnores(DocEvent):
    type: Literal["doc.ignores"] = "doc.ignores"
    request_id: str | None = None
    dismissed: list[DismissedFinding]
    rules_off: list[str]
    words: list[str]
    user: UserIgnores


DOC_EVENTS = (
    DocOpened,
    DocAck,
    DocSuggestion,
    DocRetracted,
    DocInsight,
    DocAnalyzed,
    DocIgnores,
)

# ---------------------------------------------------------------- documents topic (commands)


class _Command(_Model):
    doc_id: str
    user_id: str
    at: str = Field(default_factory=now_rfc3339)


class _Answered(_Command):
    # Which socket asked (the stream record of the answer carries it in ``reply-to``).
    reply_to: str
    request_id: str | None = None


class UserPreferences(UserIgnores):
    """The user's preferences as the store held them when the gateway wrote a command:
    ``revision`` orders them (a document keeps the highest it heard)."""

    revision: int = 0


class DocumentOpenRequested(_Answered):
    """``doc.open``: with ``create``, the document's first state; else a reopen."""

    type: Literal["document.open"] = "document.open"
    create: bool
    text: str = ""
    title: str | None = None
    focus: list[Focus] | None = None
    preferences: UserPreferences | None = None


class DocumentEdited(_Answered):
    type: Literal["document.edited"] = "document.edited"
    version: int
    changes: list[DocChange]


class DocumentDeleted(_Command):
    type: Literal["document.deleted"] = "document.deleted"


class DocumentDismissed(_Answered):
    """``doc.dismiss``. For ``everywhere``: ``rule`` is the gateway's reading of ``id``, and
    ``preferences`` the user's as the store holds them after the change (applied by
    revision, like ``document.preferences``)."""

    type: Literal["document.dismissed"] = "document.dismissed"
    id: str | None = None
    rule: str | None = None
    scope: DismissScope
    undo: bool = False
    preferences: UserPreferences | None = None


class DocumentWord(_Answered):
    type: Literal["document.word"] = "document.word"
    word: str
    scope: WordScope
    undo: bool = False
    preferences: UserPreferences | None = None


class DocumentPreferences(_Command):
    """The user's preferences changed (``PUT /v1/me/preferences``, or a ``doc.dismiss`` /
    ``doc.word`` for everywhere): sent to each of the user's documents."""

    type: Literal["document.preferences"] = "document.preferences"
    preferences: UserPreferences


DocumentCommand = Annotated[
    DocumentOpenRequested
    | DocumentEdited
    | DocumentDeleted
    | DocumentDismissed
    | DocumentWord
    | DocumentPreferences,
    Field(discriminator="type"),
]
document_command_adapter: TypeAdapter[DocumentCommand] = TypeAdapter(DocumentCommand)

# ---------------------------------------------------------------- snapshots topic (compacted)


# A live suggestion as its owner keeps it: its span in UTF-16 units only. (A comment, not
# a docstring: the snapshot's schema has no description for it.)
class LiveSuggestionRecord(_Model):
    id: str
    focus: Focus
    quote: str
    message: str
    replacement: str | None = None
    start_utf16: int
    end_utf16: int
    rule: str | None = None


class DocumentIgnoresRecord(_Model):
    dismissed: dict[str, DismissedFinding] = Field(default_factory=dict)  # by finding key
    rules_off: list[str] = Field(default_factory=list)
    words: list[str] = Field(default_factory=list)
    user: UserPreferences = Field(default_factory=UserPreferences)


class DocumentSnapshot(_Model):
    """A document's whole state as its owner held it after the record at ``offset`` of its
    partition of the documents topic: a new owner starts from it and folds the edits
    after it. Also what the store shows (``GET /v1/documents/{doc_id}``)."""

    type: Literal["document.snapshot"] = "document.snapshot"
    doc_id: str
    user_id: str
    at: str = Field(default_factory=now_rfc3339)
    created_at: str
    offset: int
    title: str | None = None
    focus: list[Focus]
    text: str
    version: int
    suggestions: list[LiveSuggestionRecord]
    # The owner's bookkeeping: which paragraphs the last pass left current, the id
    # counter, the live ids of document-level findings, the version last analyzed.
    current: list[bool]
    ids: int
    across: list[str]
    analyzed_version: int | None = None
    deleted: bool = False
    # The writer's say about this document, and the user's preferences it last heard.
    ignores: DocumentIgnoresRecord | None = None


# ---------------------------------------------------------------- outcomes topic


class DocumentTimings(_Model):
    idle_ms: float  # from the edit that ended the burst to the pass's start
    analysis_ms: float


class DocumentAnalyzedOutcome(_Model):
    type: Literal["document.analyzed"] = "document.analyzed"
    doc_id: str
    user_id: str
    at: str = Field(default_factory=now_rfc3339)
    version: int
    provider: str
    suggestions: dict[Focus, int]
    paragraphs: int
    reanalyzed: int
    timings: DocumentTimings


FeedbackAction = Literal[
    "accepted",
    "dismissed",
    "undismissed",
    "rule_off",
    "rule_on",
    "word_added",
    "word_removed",
]
FeedbackScope = Literal["suggestion", "document", "everywhere"]


class SuggestionFeedbackOutcome(_Model):
    """A writer's decision about a suggestion, a rule or a word (section 6, "The writer's
    say"): what analytics counts to learn which rules writers keep and which they throw
    away."""

    type: Literal["suggestion.feedback"] = "suggestion.feedback"
    user_id: str
    doc_id: str | None = None
    story_id: str | None = None
    suggestion_id: str | None = None
    rule: str | None = None
    focus: Focus | None = None
    provider: str | None = None
    model: str | None = None
    action: FeedbackAction
    scope: FeedbackScope
    word: str | None = None
    at: str = Field(default_factory=now_rfc3339)
