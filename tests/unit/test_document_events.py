"""The live documents' records (docs/protocol.md section 6): the client frames are strict
and dispatched by ``client_message_adapter``; ``document.analyzed`` is an outcome event
that the story store reads past."""

from __future__ import annotations

import json
from typing import Any, get_args

import pytest
from pydantic import ValidationError

from amplify_stream.events import (
    SCHEMA_MODELS,
    DocAck,
    DocClose,
    DocEdit,
    DocOpen,
    DocumentAnalyzedOutcome,
    DocumentTimings,
    Ping,
    StorySubmit,
    client_message_adapter,
    encode,
    outcome_adapter,
)
from amplify_stream.store.db import create_engine, create_schema, session_factory
from amplify_stream.store.stories import StoryStore
from tests.conftest import SettingsFactory

CHANGE = {"start_utf16": 0, "end_utf16": 3, "text": "The"}
EDIT: dict[str, Any] = {"type": "doc.edit", "doc_id": "d1", "version": 3, "changes": [CHANGE]}
ANALYZED = DocumentAnalyzedOutcome(
    doc_id="d1",
    user_id="u1",
    version=3,
    provider="local",
    suggestions={"plot": 2, "setting": 1},
    paragraphs=5,
    reanalyzed=2,
    timings=DocumentTimings(idle_ms=301.5, analysis_ms=40.0),
)


IN_CHANGE = ("doc.edit", "changes", "0")


def with_change(**fields: Any) -> dict[str, Any]:
    """``EDIT`` whose one change has ``fields`` (added or replaced)."""
    return EDIT | {"changes": [CHANGE | fields]}


def refused(frame: dict[str, Any]) -> list[tuple[str, ...]]:
    """The locations ``client_message_adapter`` names when it refuses ``frame``."""
    with pytest.raises(ValidationError) as caught:
        client_message_adapter.validate_python(frame)
    return [tuple(str(part) for part in error["loc"]) for error in caught.value.errors()]


# ---------------------------------------------------------------- dispatch


@pytest.mark.parametrize(
    ("frame", "model"),
    [
        ({"type": "doc.open"}, DocOpen),
        ({"type": "doc.open", "request_id": "r1", "text": "Once.", "title": "T"}, DocOpen),
        ({"type": "doc.open", "doc_id": "d1", "focus": ["plot", "dialogue"]}, DocOpen),
        (EDIT, DocEdit),
        (EDIT | {"request_id": "r2"}, DocEdit),
        ({"type": "doc.close", "doc_id": "d1"}, DocClose),
        ({"type": "ping"}, Ping),
        ({"type": "story.submit", "text": "Once."}, StorySubmit),
    ],
)
def test_the_adapter_dispatches_every_frame_by_its_type(
    frame: dict[str, Any], model: type[Any]
) -> None:
    message = client_message_adapter.validate_python(frame)
    assert type(message) is model
    assert message.model_dump(exclude_unset=True) == frame
    # The same from JSON text, as the socket reads it.
    assert type(client_message_adapter.validate_json(json.dumps(frame))) is model


def test_an_edit_keeps_its_changes_in_order() -> None:
    changes = [CHANGE, {"start_utf16": 5, "end_utf16": 5, "text": "\n"}]
    edit = client_message_adapter.validate_python(EDIT | {"changes": changes})
    assert isinstance(edit, DocEdit)
    assert [(c.start_utf16, c.end_utf16, c.text) for c in edit.changes] == [
        (0, 3, "The"),
        (5, 5, "\n"),
    ]


def test_an_unknown_doc_type_is_refused_by_its_type() -> None:
    assert refused({"type": "doc.delete", "doc_id": "d1"}) == [()]


# ---------------------------------------------------------------- strictness


@pytest.mark.parametrize(
    ("frame", "where"),
    [
        # A wrong JSON type is refused, never coerced.
        (EDIT | {"version": "3"}, ("doc.edit", "version")),
        (EDIT | {"version": 3.0}, ("doc.edit", "version")),
        (EDIT | {"version": True}, ("doc.edit", "version")),
        (EDIT | {"doc_id": 7}, ("doc.edit", "doc_id")),
        (with_change(start_utf16="0"), (*IN_CHANGE, "start_utf16")),
        (with_change(text=None), (*IN_CHANGE, "text")),
        ({"type": "doc.open", "text": 5}, ("doc.open", "text")),
        ({"type": "doc.close", "doc_id": None}, ("doc.close", "doc_id")),
        # Negative offsets, and a version before the first edit's.
        (with_change(start_utf16=-1), (*IN_CHANGE, "start_utf16")),
        (with_change(end_utf16=-2), (*IN_CHANGE, "end_utf16")),
        (EDIT | {"version": 0}, ("doc.edit", "version")),
        (EDIT | {"version": -1}, ("doc.edit", "version")),
        # Empty or missing changes, an empty focus, a focus outside the four.
        (EDIT | {"changes": []}, ("doc.edit", "changes")),
        ({k: v for k, v in EDIT.items() if k != "changes"}, ("doc.edit", "changes")),
        ({"type": "doc.open", "focus": []}, ("doc.open", "focus")),
        ({"type": "doc.open", "focus": ["pacing"]}, ("doc.open", "focus", "0")),
        # Missing ids, over-long ones.
        ({"type": "doc.close"}, ("doc.close", "doc_id")),
        ({k: v for k, v in EDIT.items() if k != "version"}, ("doc.edit", "version")),
        ({"type": "doc.close", "doc_id": "d" * 101}, ("doc.close", "doc_id")),
        ({"type": "doc.open", "request_id": "r" * 201}, ("doc.open", "request_id")),
        ({"type": "doc.open", "title": "t" * 201}, ("doc.open", "title")),
        # Unknown fields, at the top and in a change.
        (EDIT | {"cursor": "0-1"}, ("doc.edit", "cursor")),
        ({"type": "doc.open", "story_id": "s1"}, ("doc.open", "story_id")),
        ({"type": "doc.close", "doc_id": "d1", "version": 3}, ("doc.close", "version")),
        (with_change(start=0), (*IN_CHANGE, "start")),
    ],
)
def test_a_frame_that_breaks_the_rules_is_refused(
    frame: dict[str, Any], where: tuple[str, ...]
) -> None:
    assert where in refused(frame)


def test_the_models_themselves_are_strict() -> None:
    with pytest.raises(ValidationError):
        DocEdit.model_validate(EDIT | {"version": "3"})
    with pytest.raises(ValidationError):
        DocEdit.model_validate_json(json.dumps(EDIT | {"version": "3"}))
    with pytest.raises(ValidationError):
        DocOpen.model_validate({"type": "doc.open", "extra": 1})


# ---------------------------------------------------------------- what the service sends


def test_server_events_carry_the_contracts_common_fields() -> None:
    ack = json.loads(DocAck(doc_id="d1", version=4, request_id="r2").model_dump_json())
    assert {"type", "doc_id", "version", "at"} <= set(ack)
    assert ack["type"] == "doc.ack"


def test_every_document_record_is_published_under_its_type() -> None:
    documents = ("client.doc.", "stream.doc.", "documents.", "document-snapshots.")
    published = {n: m for n, m in SCHEMA_MODELS.items() if n.startswith(documents)}
    assert len(published) == 5 + 7 + 6 + 1
    published["outcomes.document.analyzed"] = SCHEMA_MODELS["outcomes.document.analyzed"]
    for name, model in published.items():
        assert get_args(model.model_fields["type"].annotation) == (name.split(".", 1)[1],)


# ---------------------------------------------------------------- document.analyzed


def test_document_analyzed_is_an_outcome_event() -> None:
    event = outcome_adapter.validate_json(encode(ANALYZED))
    assert event == ANALYZED
    value = json.loads(encode(ANALYZED))
    assert "story_id" not in value and "attempt" not in value
    assert value["type"] == "document.analyzed"


async def test_the_story_store_ignores_document_analyzed(make_settings: SettingsFactory) -> None:
    engine = create_engine(make_settings())
    try:
        await create_schema(engine)
        store = StoryStore(session_factory(engine))
        assert await store.apply_outcome(ANALYZED) is False
    finally:
        await engine.dispose()
