"""docs/asyncapi.yaml: up to date, valid AsyncAPI 3.0 (against the official JSON Schema,
vendored in tests/data/asyncapi), and true to the event models."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from amplify_stream import asyncapi
from amplify_stream.cli import main
from amplify_stream.events import (
    SCHEMA_MODELS,
    DocChange,
    DocumentAnalyzedOutcome,
    DocumentEdited,
    DocumentTimings,
    ErrorInfo,
    StoryCompletedOutcome,
    StorySubmitted,
    StoryTimings,
    encode,
)

ROOT = Path(__file__).resolve().parents[2]
OFFICIAL = ROOT / "tests" / "data" / "asyncapi" / "asyncapi-3.0.0.schema.json"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docs" / "asyncapi.yaml").read_text())
    return loaded


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(OFFICIAL.read_text()))


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in refs(value)]
    return []


def payload_validator(document: dict[str, Any], message: dict[str, Any]) -> Any:
    # Pydantic writes JSON Schema 2020-12; refs point into the document's components.
    schema = {"$ref": message["payload"]["$ref"], "components": document["components"]}
    return jsonschema.Draft202012Validator(schema)


def test_the_committed_document_is_up_to_date() -> None:
    assert (ROOT / "docs" / "asyncapi.yaml").read_text() == asyncapi.render()


def test_it_is_valid_asyncapi_3(
    document: dict[str, Any], validator: jsonschema.Draft7Validator
) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]
    assert not errors, errors[:5]
    assert document["asyncapi"] == "3.0.0"


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d.pop("info"),
        lambda d: d["operations"]["publishStories"].update(action="publish"),  # 2.x's word
        lambda d: d["servers"]["kafka"].pop("protocol"),
        lambda d: d["channels"]["stories"]["bindings"]["kafka"].update(partitions=0),
        lambda d: d["components"]["schemas"]["StorySubmitted"].update(type=5),
    ],
)
def test_the_validation_catches_a_broken_document(
    document: dict[str, Any], validator: jsonschema.Draft7Validator, breakage: Any
) -> None:
    broken = copy.deepcopy(document)
    breakage(broken)
    assert list(validator.iter_errors(broken))


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    for ref in refs(document):
        assert resolve(document, ref) is not None, ref


def test_operations_send_and_receive_their_own_channel_messages(document: dict[str, Any]) -> None:
    for name, operation in document["operations"].items():
        channel = operation["channel"]["$ref"]
        assert operation["action"] in ("send", "receive"), name
        for message in operation["messages"]:
            assert message["$ref"].startswith(channel + "/messages/"), (name, message)
    actions = {(op["channel"]["$ref"], op["action"]) for op in document["operations"].values()}
    for channel in document["channels"]:
        assert (f"#/channels/{channel}", "send") in actions, channel


def test_the_websocket_channel(document: dict[str, Any]) -> None:
    channel = document["channels"]["websocket"]
    assert channel["address"] == "/v1/stream"
    assert resolve(document, channel["servers"][0]["$ref"])["protocol"] == "ws"
    ops = {op["action"]: op for op in document["operations"].values() if "websocket" in str(op)}
    received = {m["$ref"].rsplit("/", 1)[1] for m in ops["receive"]["messages"]}
    sent = {m["$ref"].rsplit("/", 1)[1] for m in ops["send"]["messages"]}
    assert received == {
        "story.submit",
        "story.resume",
        "story.cancel",
        "ping",
        "doc.open",
        "doc.edit",
        "doc.close",
        "doc.dismiss",
        "doc.word",
    }
    stream_events = {name.split(".", 1)[1] for name in SCHEMA_MODELS if name.startswith("stream.")}
    assert sent == stream_events
    assert {"story.accepted", "enhancement.delta", "audio.chunk", "error", "pong"} <= sent
    assert {"doc.opened", "doc.ack", "doc.suggestion", "doc.retracted"} <= sent
    assert {"doc.insight", "doc.analyzed", "doc.ignores"} <= sent


def test_the_topics(document: dict[str, Any]) -> None:
    channels = document["channels"]
    addresses = {name: channels[name]["address"] for name in channels}
    assert addresses == {
        "websocket": "/v1/stream",
        "stories": "{prefix}.stories.v1",
        "stream": "{prefix}.stream.v1",
        "outcomes": "{prefix}.outcomes.v1",
        "dlq": "{prefix}.dlq.v1",
        "segments": "{prefix}.segments.v1",
        "documents": "{prefix}.documents.v1",
        "document-snapshots": "{prefix}.document-snapshots.v1",
    }
    assert channels["stories"]["parameters"]["prefix"]["default"] == "amplify"
    assert channels["segments"]["tags"][0]["name"] == "internal"
    assert channels["document-snapshots"]["tags"][0]["name"] == "internal"
    assert set(channels["outcomes"]["messages"]) == {
        "enhancement.completed",
        "enhancement.failed",
        "narration.completed",
        "narration.failed",
        "story.completed",
        "document.analyzed",
        "suggestion.feedback",
    }
    # Answers of the gateway itself never travel on the stream topic; documents' events do.
    assert not {"pong", "story.accepted"} & set(channels["stream"]["messages"])
    assert {"enhancement.delta", "doc.opened", "doc.ack"} <= set(channels["stream"]["messages"])
    assert set(channels["dlq"]["messages"]) == {"dead_letter"}
    assert set(channels["documents"]["messages"]) == {
        "document.open",
        "document.edited",
        "document.deleted",
        "document.dismissed",
        "document.word",
        "document.preferences",
    }
    assert set(channels["document-snapshots"]["messages"]) == {"document.snapshot"}


def test_the_snapshots_topic_is_compacted_and_the_others_expire(document: dict[str, Any]) -> None:
    for name, channel in document["channels"].items():
        if name == "websocket":
            continue
        config = channel["bindings"]["kafka"]["topicConfiguration"]
        if name == "document-snapshots":
            assert config == {"cleanup.policy": ["compact"]}
        else:
            assert config["retention.ms"] > 0, name
            assert "cleanup.policy" not in config, name


def test_kafka_messages_have_the_headers_and_the_key(document: dict[str, Any]) -> None:
    kafka = [c for name, c in document["channels"].items() if name != "websocket"]
    for channel in kafka:
        for event_type, ref in channel["messages"].items():
            message = resolve(document, ref["$ref"])
            assert message["name"] == event_type
            headers = message["headers"]["allOf"]
            assert resolve(document, headers[0]["$ref"])["required"] == [
                "event-type",
                "content-type",
                "schema-version",
            ]
            assert headers[1]["properties"]["event-type"]["const"] == event_type
            binding = resolve(document, message["bindings"]["$ref"])["kafka"]
            assert binding["key"]["type"] == "string"
            documents = channel["address"].split(".")[1] in ("documents", "document-snapshots")
            if documents or event_type.startswith("doc.") or event_type == "document.analyzed":
                assert binding["key"]["description"] == "doc_id, UTF-8", event_type
            else:
                assert binding["key"]["description"].startswith("story_id"), event_type


def test_document_answers_name_the_reply_to_header(document: dict[str, Any]) -> None:
    messages = document["channels"]["stream"]["messages"]
    for event_type, ref in messages.items():
        headers = resolve(document, ref["$ref"])["headers"]["allOf"][1]["properties"]
        replies = event_type.startswith("doc.") or event_type == "error"
        assert ("reply-to" in headers) == replies, event_type
    header = document["components"]["schemas"]["ReplyToHeader"]
    assert header["type"] == "string"
    for name, channel in document["channels"].items():
        if name not in ("websocket", "stream"):
            for ref in channel["messages"].values():
                message = resolve(document, ref["$ref"])
                assert "reply-to" not in message["headers"]["allOf"][1]["properties"], name


def test_every_model_is_a_payload(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for model in SCHEMA_MODELS.values():
        assert model.__name__ in schemas, model.__name__
        assert (
            schemas[model.__name__]["properties"]
            == model.model_json_schema(ref_template="#/components/schemas/{model}")["properties"]
        )


def test_real_records_validate_against_the_payloads(document: dict[str, Any]) -> None:
    messages = document["components"]["messages"]
    submitted = StorySubmitted(story_id="s1", user_id="u1", text="Once upon a time.")
    done = StoryCompletedOutcome(
        story_id="s1",
        user_id="u1",
        attempt=1,
        status="failed",
        error=ErrorInfo(code="provider_error", message="no"),
        timings=StoryTimings(total_ms=12.5),
    )
    edited = DocumentEdited(
        doc_id="d1",
        user_id="u1",
        reply_to="socket-1",
        version=3,
        changes=[DocChange(start_utf16=0, end_utf16=2, text="Hi")],
    )
    analyzed = DocumentAnalyzedOutcome(
        doc_id="d1",
        user_id="u1",
        version=3,
        provider="local",
        suggestions={"plot": 1, "dialogue": 0},
        paragraphs=4,
        reanalyzed=1,
        timings=DocumentTimings(idle_ms=300.0, analysis_ms=12.5),
    )
    cases = [
        ("kafka.stories.story.submitted", submitted, "story_id"),
        ("kafka.outcomes.story.completed", done, "story_id"),
        ("kafka.documents.document.edited", edited, "doc_id"),
        ("kafka.outcomes.document.analyzed", analyzed, "doc_id"),
    ]
    for key, event, id_field in cases:
        check = payload_validator(document, messages[key])
        check.validate(json.loads(encode(event)))
        wrong = json.loads(encode(event)) | {id_field: 7}
        assert list(check.iter_errors(wrong)), key
    delta = {"type": "enhancement.delta", "story_id": "s", "at": "t", "text": "x", "attempt": 1}
    payload_validator(document, messages["ws.enhancement.delta"]).validate(
        delta | {"cursor": "0-3"}
    )


def test_the_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "asyncapi.yaml"
    out.write_text("asyncapi: 3.0.0\n")
    assert main(["asyncapi", "--out", str(out), "--check"]) == 1
    assert "out of date" in capsys.readouterr().err
    assert main(["asyncapi", "--out", str(out)]) == 0
    assert main(["asyncapi", "--out", str(out), "--check"]) == 0
