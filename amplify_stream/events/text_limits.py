"""The rules docs/protocol.md puts on the texts a client writes, once for stories (section 1)
and live documents (section 6) alike: a text of at most ``AMPLIFY_MAX_STORY_CHARS`` code
points (``story_too_large``; a live document's after every edit too), a title of at most
``AMPLIFY_MAX_TITLE_CHARS``, no NUL character (PostgreSQL text cannot hold one), and a
story that is not only whitespace.

The models check what does not depend on the settings; these rules run after them. A
broken rule names its field first (``title: ...``), as the socket's field errors do. The
same rules as JSON Schema keywords (``json_schema``) go into the OpenAPI document of a
running service, with its own settings' values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from amplify_stream.errors import AmplifyError, StoryTooLarge

NUL = "\x00"
# Python's whitespace (``str.isspace``, what ``strip()`` removes), spelled out: ``\s``
# means something else in other regex dialects.
_SPACE = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NO_NUL_PATTERN = r"^[^\x00]*$"
NOT_BLANK_PATTERN = rf"^[^\x00]*[^\x00{_SPACE}][^\x00]*$"


class TextTooLong(StoryTooLarge):
    """A text over the limit: a story, a new document's, or the one an edit would leave
    (nothing of such an edit is applied)."""

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"a text of {length} characters; the limit is {limit}")


def check_length(text: str, max_chars: int) -> None:
    if len(text) > max_chars:
        raise TextTooLong(len(text), max_chars)


def field_error(invalid: type[AmplifyError], field: str, problem: str) -> AmplifyError:
    """A rule broken by ``field``: ``invalid_story`` over HTTP, ``invalid_message`` on the
    socket (``invalid``), in one shape."""
    return invalid(f"{field}: {problem}", details=[{"loc": [field], "msg": problem}])


class Texts(Protocol):
    """A message with a text and a title (``story.submit``, ``doc.open``)."""

    @property
    def text(self) -> str | None: ...

    @property
    def title(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class TextFields:
    """What the rules read of one kind of message."""

    # Whether its text may be empty or only whitespace.
    blank_text: bool
    # Its other fields that may hold no NUL.
    other_texts: tuple[str, ...] = ()


STORY_TEXTS = TextFields(blank_text=False, other_texts=("voice", "idempotency_key"))
DOCUMENT_TEXTS = TextFields(blank_text=True)


class LimitSettings(Protocol):
    """The settings these rules read (``LimitsSettings``)."""

    @property
    def max_story_chars(self) -> int: ...

    @property
    def max_title_chars(self) -> int: ...


@dataclass(frozen=True, slots=True)
class TextLimits:
    max_chars: int  # AMPLIFY_MAX_STORY_CHARS
    max_title_chars: int  # AMPLIFY_MAX_TITLE_CHARS

    @classmethod
    def of(cls, settings: LimitSettings) -> TextLimits:
        return cls(settings.max_story_chars, settings.max_title_chars)

    def check(self, message: Texts, fields: TextFields, invalid: type[AmplifyError]) -> None:
        """``TextTooLong`` for a long text (an absent one is empty), else ``invalid``
        naming the first field that breaks a rule."""
        text, title = message.text or "", message.title
        check_length(text, self.max_chars)
        if title is not None and len(title) > self.max_title_chars:
            raise field_error(invalid, "title", f"longer than {self.max_title_chars} characters")
        if not fields.blank_text and not text.strip():
            raise field_error(invalid, "text", "the story is empty")
        others = {name: getattr(message, name) for name in fields.other_texts}
        for name, value in {"text": text, "title": title, **others}.items():
            if value is not None and NUL in value:
                raise field_error(invalid, name, "must not contain NUL characters")

    def json_schema(self, fields: TextFields) -> dict[str, dict[str, Any]]:
        """The rules of ``check`` as JSON Schema keywords, by field."""
        return {
            "text": {
                "maxLength": self.max_chars,
                "pattern": NO_NUL_PATTERN if fields.blank_text else NOT_BLANK_PATTERN,
            },
            "title": {"maxLength": self.max_title_chars, "pattern": NO_NUL_PATTERN},
            **{name: {"pattern": NO_NUL_PATTERN} for name in fields.other_texts},
        }
