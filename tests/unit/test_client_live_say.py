"""The writer's say on a live document as the client holds it (``LiveDocument``): the
``doc.dismiss`` and ``doc.word`` frames it makes are the contract's (the gateway's own
models read them), a mark stays until the service retracts it, and the last
``doc.ignores`` is what the client knows of the document's say."""

from __future__ import annotations

from typing import Any

import pytest

from amplify_stream.client.live import Frame, LiveDocument
from amplify_stream.events.documents import DocDismiss, DocWord

OPENED = {"type": "doc.opened", "doc_id": "d1", "version": 0, "text": "The dog was very big."}
SUGGESTION = {
    "type": "doc.suggestion",
    "doc_id": "d1",
    "version": 0,
    "id": "d1-1",
    "focus": "plot",
    "rule": "plot.intensifier",
    "quote": "very big",
    "start": 12,
    "end": 20,
    "start_utf16": 12,
    "end_utf16": 20,
    "message": "'very' props up 'big'",
    "replacement": "huge",
}


def opened() -> LiveDocument:
    doc = LiveDocument.opened(OPENED)
    doc.receive(SUGGESTION)
    return doc


@pytest.mark.parametrize(
    ("args", "kwargs", "frame"),
    [
        (["d1-1"], {}, {"id": "d1-1", "scope": "suggestion"}),
        (
            ["d1-1"],
            {"scope": "everywhere", "request_id": "r1"},
            {"id": "d1-1", "scope": "everywhere", "request_id": "r1"},
        ),
        (
            [],
            {"rule": "plot.intensifier", "scope": "document", "undo": True},
            {"rule": "plot.intensifier", "scope": "document", "undo": True},
        ),
    ],
)
def test_dismiss_frames(args: list[str], kwargs: dict[str, Any], frame: Frame) -> None:
    made = opened().dismiss(*args, **kwargs)
    assert made == {"type": "doc.dismiss", "doc_id": "d1", **frame}
    DocDismiss.model_validate(made)  # what the gateway reads


def test_vouch_frames() -> None:
    doc = opened()
    made = doc.vouch("Maura")
    assert made == {"type": "doc.word", "doc_id": "d1", "word": "Maura", "scope": "document"}
    undo = doc.vouch("Maura", scope="everywhere", undo=True, request_id="w")
    assert undo == made | {"scope": "everywhere", "undo": True, "request_id": "w"}
    for frame in (made, undo):
        DocWord.model_validate(frame)


def test_the_mark_goes_when_the_service_says_and_the_ignores_are_kept() -> None:
    doc = opened()
    doc.dismiss("d1-1")
    assert set(doc.marks) == {"d1-1"}  # a refusal would leave it live: wait for the service
    assert doc.ignores is None
    doc.receive({"type": "doc.retracted", "doc_id": "d1", "version": 0, "ids": ["d1-1"]})
    ignores = {
        "type": "doc.ignores",
        "doc_id": "d1",
        "version": 0,
        "dismissed": [{k: SUGGESTION[k] for k in ("id", "rule", "focus", "quote", "message")}],
        "rules_off": [],
        "words": [],
        "user": {"rules_off": [], "words": []},
    }
    doc.receive(ignores)
    assert doc.marks == {} and doc.ignores == ignores
