"""The event schemas stay compatible with the committed baseline of their version.

The baseline is ``tests/data/schema-baseline/v<SCHEMA_VERSION>/``: the generated schemas of
every client frame, stream event, command, segment, outcome and dead letter, as last
accepted. ``tests/schema_compat.py`` says what counts as breaking (a message or field
removed or renamed, a type narrowed, a field newly required, a sent field widened).

When this test fails:
- the change is meant to be compatible: make it so (add fields as optional, keep names);
- the contract really changes: bump ``SCHEMA_VERSION`` in amplify_stream/events/common.py together
  with the topics' ``.v<N>`` suffix (``Settings.topic``) and the socket subprotocol, then
  start the new version's baseline with ``python -m tests.schema_compat --refresh``.

After a compatible change (new optional fields, new messages), refresh the baseline too,
so that what was added is guarded from then on:

    .venv/bin/python -m tests.schema_compat --refresh

``--refresh`` refuses breaking changes; ``--refresh --accept-breaking`` overrides that
(for a deliberate break within a version, reviewed like any other contract change).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from amplify_stream.config import Settings
from amplify_stream.events import SCHEMA_VERSION, schema_documents
from amplify_stream.gateway.authn import SUBPROTOCOL
from tests import schema_compat
from tests.schema_compat import Schema, breaking_changes, load_baseline, write_baseline


@pytest.fixture(scope="module")
def current() -> dict[str, Schema]:
    return schema_documents()


def changed(documents: dict[str, Schema], name: str) -> tuple[dict[str, Schema], Schema]:
    """A deep copy of ``documents`` and, in it, the schema ``name`` to modify."""
    copied = copy.deepcopy(documents)
    return copied, copied[name]


# ---------------------------------------------------------------- the real schemas


def test_current_schemas_keep_the_baseline(current: dict[str, Schema]) -> None:
    baseline = load_baseline(SCHEMA_VERSION)
    assert baseline is not None, (
        f"no schema baseline for version {SCHEMA_VERSION}: start it deliberately with "
        "`python -m tests.schema_compat --refresh` and commit tests/data/schema-baseline/"
    )
    assert breaking_changes(baseline, current) == []


def test_one_version_names_topics_socket_and_baseline() -> None:
    # A version bump must move everything a reader pins at once.
    settings = Settings.model_construct(topic_prefix="amplify")
    assert settings.topic("outcomes") == f"amplify.outcomes.v{SCHEMA_VERSION}"
    assert f"amplify.v{SCHEMA_VERSION}" == SUBPROTOCOL


def test_baseline_covers_every_published_message(current: dict[str, Schema]) -> None:
    baseline = load_baseline(SCHEMA_VERSION) or {}
    kinds = {name.split(".", 1)[0] for name in baseline}
    assert {"client", "stream", "stories", "segments", "outcomes", "dlq"} <= kinds
    assert set(baseline) <= set(current)


def test_refresh_writes_and_prunes(tmp_path: Path, current: dict[str, Schema]) -> None:
    (tmp_path / "stream.gone.json").write_text("{}\n")
    write_baseline(current, tmp_path)
    assert {p.stem for p in tmp_path.glob("*.json")} == set(current)


def test_refresh_refuses_a_break_unless_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, current: dict[str, Schema]
) -> None:
    monkeypatch.setattr(schema_compat, "BASELINE_ROOT", tmp_path)
    old, schema = changed(current, "stream.audio.chunk")
    schema["properties"]["legacy"] = {"type": "string"}
    write_baseline(old, tmp_path / f"v{SCHEMA_VERSION}")
    assert schema_compat.main([]) == 1
    assert schema_compat.main(["--refresh"]) == 1
    assert schema_compat.main(["--refresh", "--accept-breaking"]) == 0
    assert schema_compat.main([]) == 0


# ---------------------------------------------------------------- the checker


def test_identical_schemas_pass(current: dict[str, Schema]) -> None:
    assert breaking_changes(current, copy.deepcopy(current)) == []


def test_a_removed_field_is_caught(current: dict[str, Schema]) -> None:
    new, schema = changed(current, "stream.enhancement.reset")
    del schema["properties"]["reason"]
    schema["required"].remove("reason")
    assert breaking_changes(current, new) == ["stream.enhancement.reset: $.reason: field removed"]


def test_a_renamed_field_is_caught(current: dict[str, Schema]) -> None:
    new, schema = changed(current, "outcomes.enhancement.failed")
    schema["properties"]["retries"] = schema["properties"].pop("attempts")
    schema["properties"]["retries"]["title"] = "Retries"
    schema["required"] = ["retries" if r == "attempts" else r for r in schema["required"]]
    assert breaking_changes(current, new) == [
        "outcomes.enhancement.failed: $.attempts: field removed (renamed to retries?)",
        "outcomes.enhancement.failed: $.retries: now required",
    ]


def test_a_renamed_field_in_a_nested_model_is_caught(current: dict[str, Schema]) -> None:
    new, schema = changed(current, "outcomes.enhancement.completed")
    timings = schema["$defs"]["EnhancementTimings"]
    timings["properties"]["ttft_ms"] = timings["properties"].pop("first_token_ms")
    timings["required"] = ["ttft_ms" if r == "first_token_ms" else r for r in timings["required"]]
    assert breaking_changes(current, new) == [
        "outcomes.enhancement.completed: $.timings.first_token_ms: field removed "
        "(renamed to ttft_ms?)",
        "outcomes.enhancement.completed: $.timings.ttft_ms: now required",
    ]


def test_a_type_removed_from_a_union_is_caught(current: dict[str, Schema]) -> None:
    # start: int | None -> int: the null (quote not found) is refused now.
    new, schema = changed(current, "stream.suggestion")
    schema["properties"]["start"] = {"type": "integer", "title": "Start"}
    assert breaking_changes(current, new) == ["stream.suggestion: $.start: null no longer accepted"]


def test_nullable_becoming_non_null_in_a_nested_model_is_caught(
    current: dict[str, Schema],
) -> None:
    new, schema = changed(current, "outcomes.enhancement.completed")
    schema["$defs"]["EnhancementTimings"]["properties"]["first_token_ms"] = {"type": "number"}
    assert breaking_changes(current, new) == [
        "outcomes.enhancement.completed: $.timings.first_token_ms: null no longer accepted"
    ]


def test_a_literal_losing_a_value_is_caught(current: dict[str, Schema]) -> None:
    new, schema = changed(current, "outcomes.story.completed")
    schema["properties"]["status"]["enum"].remove("cancelled")
    assert breaking_changes(current, new) == [
        'outcomes.story.completed: $.status: value "cancelled" no longer accepted'
    ]


def test_number_narrowed_to_integer_is_caught(current: dict[str, Schema]) -> None:
    new, schema = changed(current, "stream.audio.completed")
    schema["properties"]["duration_ms"]["type"] = "integer"
    assert breaking_changes(current, new) == [
        "stream.audio.completed: $.duration_ms: number no longer accepted"
    ]


def test_a_free_string_becoming_an_enum_is_caught(current: dict[str, Schema]) -> None:
    new, schema = changed(current, "stream.error")
    schema["properties"]["code"]["enum"] = ["internal"]
    assert breaking_changes(current, new) == ['stream.error: $.code: restricted to ["internal"]']


def test_tightened_constraints_are_caught(current: dict[str, Schema]) -> None:
    new, schema = changed(current, "client.story.submit")
    schema["properties"]["voice"]["anyOf"][0]["maxLength"] = 20
    schema["properties"]["focus"]["minItems"] = 2
    assert breaking_changes(current, new) == [
        "client.story.submit: $.focus: minItems tightened to 2",
        "client.story.submit: $.voice: maxLength tightened to 20",
    ]


def test_a_field_newly_required_from_clients_is_caught(current: dict[str, Schema]) -> None:
    new, schema = changed(current, "client.story.submit")
    schema["required"].append("title")
    assert breaking_changes(current, new) == ["client.story.submit: $.title: now required"]


def test_a_new_required_field_is_caught(current: dict[str, Schema]) -> None:
    new, schema = changed(current, "stories.story.submitted")
    schema["properties"]["region"] = {"type": "string"}
    schema["required"].append("region")
    assert breaking_changes(current, new) == ["stories.story.submitted: $.region: now required"]


def test_a_narrowed_map_value_is_caught(current: dict[str, Schema]) -> None:
    new, schema = changed(current, "stream.insight")
    schema["properties"]["metrics"]["anyOf"][0]["additionalProperties"] = {"type": "integer"}
    assert breaking_changes(current, new) == [
        "stream.insight: $.metrics.*: number no longer accepted"
    ]


def test_a_removed_message_is_caught(current: dict[str, Schema]) -> None:
    new = copy.deepcopy(current)
    del new["outcomes.narration.failed"]
    assert breaking_changes(current, new) == ["outcomes.narration.failed: message removed"]


def test_a_sent_field_widened_is_caught_a_received_one_is_not(
    current: dict[str, Schema],
) -> None:
    # attempt: int -> int | None: a client doing arithmetic on it meets a null.
    new, schema = changed(current, "stream.enhancement.started")
    schema["properties"]["attempt"] = {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    new["client.story.submit"]["properties"]["rewrite"] = {
        "anyOf": [{"type": "boolean"}, {"type": "string"}]
    }
    assert breaking_changes(current, new) == [
        "stream.enhancement.started: $.attempt: widened to also null"
    ]


def test_additions_pass(current: dict[str, Schema]) -> None:
    new, schema = changed(current, "stream.audio.word")
    schema["properties"]["confidence"] = {"anyOf": [{"type": "number"}, {"type": "null"}]}
    new["outcomes.story.completed"]["properties"]["status"]["enum"].append("expired")
    new["stream.audio.paused"] = {"type": "object", "properties": {"at": {"type": "string"}}}
    # Loosening what clients may send is fine too.
    new["client.story.submit"]["properties"]["focus"]["minItems"] = 0
    assert breaking_changes(current, new) == []


@pytest.mark.parametrize(
    ("old", "new", "problems"),
    [
        ({"type": "integer"}, {"type": "number"}, []),
        ({"type": ["string", "null"]}, {"type": "string"}, ["x: $: null no longer accepted"]),
        ({"const": "a"}, {"enum": ["a", "b"]}, []),
        ({"enum": ["a", 1]}, {"type": "string"}, ["x: $: integer no longer accepted"]),
        ({}, {"type": "string"}, ["x: $: any no longer accepted"]),
        ({"type": "array", "items": {"type": "string"}}, {"type": "array"}, []),
        (
            {"type": "object", "properties": {"a": {"type": "string"}}},
            {"type": "object", "additionalProperties": False, "properties": {"a": {}}},
            ["x: $: no longer accepts extra properties"],
        ),
        (
            {"type": "string", "pattern": "^a"},
            {"type": "string", "pattern": "^ab"},
            ["x: $: pattern changed to '^ab'"],
        ),
        (
            {"type": "array", "items": {"type": "number"}},
            {"type": "array", "items": {"type": "integer"}},
            ["x: $[]: number no longer accepted"],
        ),
    ],
)
def test_rules_on_small_schemas(old: Any, new: Any, problems: list[str]) -> None:
    assert breaking_changes({"client.x": old}, {"client.x": new}) == [
        p.replace("x:", "client.x:", 1) for p in problems
    ]


@pytest.mark.parametrize(
    ("old", "new", "problems"),
    [
        ({"type": "integer"}, {"type": "number"}, ["$: widened to also number"]),
        ({"type": "number"}, {"type": "integer"}, ["$: number no longer accepted"]),
        ({"type": "string"}, {"type": ["string", "null"]}, ["$: widened to also null"]),
        ({"enum": ["a"]}, {"enum": ["a", "b"]}, []),  # a new value of the same type
    ],
)
def test_widening_on_sent_messages(old: Any, new: Any, problems: list[str]) -> None:
    assert breaking_changes({"outcomes.x": old}, {"outcomes.x": new}) == [
        f"outcomes.x: {p}" for p in problems
    ]
