"""The text rules of stories and live documents (``events/text_limits.py``): one check, one
error shape, and the same rules as JSON Schema keywords (what the OpenAPI document says)."""

from __future__ import annotations

from dataclasses import dataclass

import jsonschema
import pytest

from amplify_stream.documents.state import DocumentState
from amplify_stream.errors import AmplifyError, InvalidMessage, InvalidStory, StoryTooLarge
from amplify_stream.events import DocOpen, StoryOptions
from amplify_stream.events.text_limits import (
    DOCUMENT_TEXTS,
    STORY_TEXTS,
    TextFields,
    TextLimits,
    TextTooLong,
)
from amplify_stream.text.edits import Change

LIMITS = TextLimits(max_chars=10, max_title_chars=5)


def test_a_long_text_is_story_too_large_for_stories_documents_and_edits() -> None:
    errors: list[StoryTooLarge] = []
    for message, fields in (
        (StoryOptions(text="x" * 11), STORY_TEXTS),
        (DocOpen(type="doc.open", text="x" * 11), DOCUMENT_TEXTS),
    ):
        with pytest.raises(TextTooLong) as caught:
            LIMITS.check(message, fields, InvalidStory)
        errors.append(caught.value)
    doc = DocumentState(doc_id="d", user_id="u", text="x" * 10)
    with pytest.raises(TextTooLong) as caught:
        doc.edit(1, [Change(0, 0, "y")], max_chars=10)
    errors.append(caught.value)
    assert doc.text == "x" * 10 and doc.version == 0  # nothing of it applied
    # One shape: the contract's code, and the same words wherever the text came from.
    assert {(e.code, e.http_status) for e in errors} == {("story_too_large", 413)}
    assert {e.message for e in errors} == {"a text of 11 characters; the limit is 10"}


@pytest.mark.parametrize(
    ("fields", "invalid", "message", "field"),
    [
        (STORY_TEXTS, InvalidStory, StoryOptions(text="once", title="x" * 6), "title"),
        (STORY_TEXTS, InvalidStory, StoryOptions(text=" \n\t"), "text"),
        (STORY_TEXTS, InvalidStory, StoryOptions(text="nul\x00"), "text"),
        (STORY_TEXTS, InvalidStory, StoryOptions(text="once", title="\x00"), "title"),
        (STORY_TEXTS, InvalidStory, StoryOptions(text="once", voice="v\x00"), "voice"),
        (
            STORY_TEXTS,
            InvalidStory,
            StoryOptions(text="once", idempotency_key="\x00"),
            "idempotency_key",
        ),
        (DOCUMENT_TEXTS, InvalidMessage, DocOpen(type="doc.open", title="x" * 6), "title"),
        (DOCUMENT_TEXTS, InvalidMessage, DocOpen(type="doc.open", text="a\x00"), "text"),
        (DOCUMENT_TEXTS, InvalidMessage, DocOpen(type="doc.open", title="a\x00"), "title"),
    ],
)
def test_a_broken_rule_names_its_field_in_one_shape(
    fields: TextFields, invalid: type[AmplifyError], message: StoryOptions | DocOpen, field: str
) -> None:
    with pytest.raises(invalid) as caught:
        LIMITS.check(message, fields, invalid)
    assert caught.value.message.startswith(f"{field}: ")
    assert caught.value.details == [{"loc": [field], "msg": caught.value.message[len(field) + 2 :]}]


def test_a_document_may_be_empty_or_blank() -> None:
    for text in (None, "", " \n"):
        LIMITS.check(DocOpen(type="doc.open", text=text), DOCUMENT_TEXTS, InvalidMessage)


@dataclass
class Texts:
    text: str | None
    title: str | None = None
    voice: str | None = None
    idempotency_key: str | None = None


# Every whitespace character of Python (what ``strip`` removes), and some that are not.
SPACES = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u200a\u2028\u2029\u202f\u205f\u3000"
SAMPLES = ["a", "x" * 10, "x" * 11, "", *SPACES, SPACES, f"{SPACES}a", "\x00", "a\x00b", "\u200b"]


@pytest.mark.parametrize("fields", [STORY_TEXTS, DOCUMENT_TEXTS])
def test_the_json_schema_refuses_what_the_check_refuses(fields: TextFields) -> None:
    """Each field's keywords, as the OpenAPI document states them, against ``check``."""
    schemas = LIMITS.json_schema(fields)
    for name, schema in schemas.items():
        for value in SAMPLES:
            texts = Texts(text="once") if name != "text" else Texts(text=None)
            setattr(texts, name, value)
            try:
                LIMITS.check(texts, fields, InvalidStory)
                checked = True
            except AmplifyError:
                checked = False
            valid = jsonschema.Draft202012Validator(schema).is_valid(value)
            assert valid == checked, (name, value)
