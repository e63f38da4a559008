"""The language server's files against scripted service frames: reopening after a drop
tells the service what the editor typed meanwhile, a refused edit reopens, a file closed
while it was being opened is deleted, a file over the limit stops being checked, and a new
document is opened with the editor's focus."""

from __future__ import annotations

import asyncio
from typing import Any

from lsprotocol import types

from amplify_stream.lsp.files import Files
from amplify_stream.lsp.markup import Kind
from amplify_stream.text.edits import Change, apply_changes

URI = "file:///tmp/a.txt"


class Service:
    """The frames the files send, and the socket's state."""

    def __init__(self) -> None:
        self.up = True
        self.sent: list[dict[str, Any]] = []
        self.published: list[list[types.Diagnostic]] = []
        self.told: list[str] = []
        self.deleted: list[str] = []
        self.collected: list[set[str]] = []
        self.files = Files(self.send, self.publish, self.tell, self.deleted.append, self.collect)

    def collect(self, keep: set[str], then: Any) -> None:
        self.collected.append(keep)
        then()

    def send(self, frame: dict[str, Any]) -> bool:
        if self.up:
            self.sent.append(frame)
        return self.up

    def publish(self, uri: str, version: int, diagnostics: list[types.Diagnostic]) -> None:
        self.published.append(diagnostics)

    def tell(self, kind: types.MessageType, message: str) -> None:
        self.told.append(message)

    def last(self, kind: str) -> dict[str, Any]:
        return [f for f in self.sent if f["type"] == kind][-1]

    def opened(self, text: str, version: int, doc_id: str = "d1") -> None:
        request_id = self.last("doc.open")["request_id"]
        self.files.receive(
            {
                "type": "doc.opened",
                "doc_id": doc_id,
                "version": version,
                "text": text,
                "request_id": request_id,
                "title": None,
                "focus": [],
                "at": "",
            }
        )


def typed(at: tuple[int, int], text: str) -> types.TextDocumentContentChangePartial:
    p = types.Position(line=at[0], character=at[1])
    return types.TextDocumentContentChangePartial(range=types.Range(start=p, end=p), text=text)


def suggestion(doc_id: str, version: int, start: int, end: int, quote: str) -> dict[str, Any]:
    return {
        "type": "doc.suggestion",
        "doc_id": doc_id,
        "version": version,
        "id": "s1",
        "focus": "plot",
        "quote": quote,
        "start": start,
        "end": end,
        "start_utf16": start,
        "end_utf16": end,
        "message": "m",
        "replacement": None,
        "at": "",
    }


async def test_reopen_after_a_drop_sends_what_was_typed_meanwhile() -> None:
    svc = Service()
    svc.files.did_open(URI, Kind.PLAIN, "🌊 Mara was angry.", 1)
    assert svc.last("doc.open")["text"] == "🌊 Mara was angry."
    svc.opened("🌊 Mara was angry.", 0)
    svc.files.receive(suggestion("d1", 0, 8, 17, "was angry"))
    await asyncio.sleep(0)
    assert [d.range.start.character for d in svc.published[-1]] == [8]

    svc.up = False
    svc.files.disconnected()
    svc.files.did_change(URI, 2, [typed((0, 3), "Dawn. ")])
    await asyncio.sleep(0)
    # Moved with the typing at once, though the service has not heard of it.
    assert [d.range.start.character for d in svc.published[-1]] == [14]

    svc.up = True
    svc.files.connected()
    assert svc.last("doc.open")["doc_id"] == "d1" and "text" not in svc.last("doc.open")
    svc.opened("🌊 Mara was angry.", 0)
    edit = svc.last("doc.edit")
    assert edit["version"] == 1
    changes = [Change(**c) for c in edit["changes"]]
    assert apply_changes("🌊 Mara was angry.", changes) == "🌊 Dawn. Mara was angry."


async def test_a_refused_edit_reopens_and_frames_of_the_old_version_are_ignored() -> None:
    svc = Service()
    svc.files.did_open(URI, Kind.PLAIN, "abc", 1)
    svc.opened("abc", 0)
    svc.files.did_change(URI, 2, [typed((0, 3), "d")])
    svc.files.receive(
        {
            "type": "error",
            "code": "version_conflict",
            "doc_id": "d1",
            "version": 5,
            "message": "",
            "retryable": False,
        }
    )
    reopen = svc.last("doc.open")
    assert reopen["doc_id"] == "d1"
    svc.files.receive(suggestion("d1", 5, 0, 1, "x"))  # before doc.opened: not this file's
    svc.opened("xyz", 5)
    assert svc.last("doc.edit")["version"] == 6
    await asyncio.sleep(0)
    assert svc.published[-1] == []


async def test_closed_while_opening_deletes_and_too_large_stops() -> None:
    svc = Service()
    svc.files.did_open(URI, Kind.PLAIN, "abc", 1)
    svc.files.did_close(URI)
    svc.opened("abc", 0, doc_id="gone")
    assert svc.deleted == ["gone"] and svc.last("doc.close")["doc_id"] == "gone"

    svc.files.did_open(URI, Kind.PLAIN, "x" * 10, 1)
    request_id = svc.last("doc.open")["request_id"]
    svc.files.receive(
        {
            "type": "error",
            "code": "story_too_large",
            "request_id": request_id,
            "message": "too long",
            "retryable": False,
        }
    )
    assert svc.told and "not checked" in svc.told[-1]
    opens = len([f for f in svc.sent if f["type"] == "doc.open"])
    svc.files.connected()
    assert len([f for f in svc.sent if f["type"] == "doc.open"]) == opens


async def test_the_count_of_documents_reached_collects_leftovers_once() -> None:
    svc = Service()
    svc.files.did_open(URI, Kind.PLAIN, "abc", 1)
    assert svc.last("doc.open")["title"] == "editor: a.txt"
    refusal = {
        "type": "error",
        "code": "rate_limited",
        "message": "you hold 100",
        "retryable": True,
        "retry_after": 1,
    }
    svc.files.receive(refusal | {"request_id": svc.last("doc.open")["request_id"]})
    assert svc.collected == [set()]  # and opened again at once
    svc.files.receive(refusal | {"request_id": svc.last("doc.open")["request_id"]})
    assert len(svc.collected) == 1 and "not checked" in svc.told[-1]


async def test_focus_goes_with_a_new_document_only() -> None:
    svc = Service()
    svc.files.focus = ("dialogue", "character")
    svc.files.did_open(URI, Kind.PLAIN, "abc", 1)
    assert svc.last("doc.open")["focus"] == ["dialogue", "character"]
    svc.opened("abc", 0)
    svc.files.disconnected()
    svc.files.connected()
    assert "focus" not in svc.last("doc.open")  # a reopen keeps the document's own
    svc.files.focus = None
    svc.files.did_open("file:///tmp/b.txt", Kind.PLAIN, "x", 1)
    assert "focus" not in svc.last("doc.open")
