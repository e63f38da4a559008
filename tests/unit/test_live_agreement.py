"""The section 6 promise as a property: a writer's client (``LiveDocument``) and the
document's owner (``PartitionDocuments`` plus local passes) agree, whatever the edits
(emoji, CJK, line breaks, deletions over marks) and however the messages interleave: the
owner folds the client's edits in order while the client goes on typing and hears the
owner's answers late. After everything is delivered and a last pass is heard, both
have the same text, the client's marks are exactly the owner's live set at the same
spans, and every mark slices its quote. Also through a snapshot: a new owner that
starts from a snapshot taken mid-way and folds the rest ends in the same place."""

from __future__ import annotations

from collections import deque

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from amplify_stream.client.live import Frame, LiveDocument
from amplify_stream.documents.local_pass import insights_of, local_pass
from amplify_stream.documents.partition import Answer, PartitionDocuments, pass_answers
from amplify_stream.events.documents import (
    DocChange,
    DocumentEdited,
    DocumentOpenRequested,
    DocumentSnapshot,
)
from amplify_stream.text.edits import Change

PIECES = ["a", "very ", "was very angry", "🌊", "港口", "\n", "Mara ", "Tom ", "", " ", "é"]
START = "Mara was very angry.\nTom 港口 waited 🌊.\nIt was a dark night."


def frame_of(answer: Answer) -> Frame:
    frame: Frame = orjson.loads(answer.event.model_dump_json())
    return frame


def boundaries(text: str) -> list[int]:
    """The UTF-16 offsets a client can put a caret at (never inside a surrogate pair)."""
    offsets, units = [0], 0
    for char in text:
        units += 2 if ord(char) > 0xFFFF else 1
        offsets.append(units)
    return offsets


class Owner:
    """The owner of one document, folding in log order, answering into a queue."""

    def __init__(self, docs: PartitionDocuments, doc_id: str) -> None:
        self.docs = docs
        self.doc_id = doc_id
        self.offset = 0
        self.outbox: deque[Frame] = deque()

    def fold(self, command: DocumentOpenRequested | DocumentEdited) -> None:
        folded = self.docs.fold(command, self.offset)
        self.offset += 1
        self.outbox.extend(frame_of(a) for a in folded.answers)

    def analyze(self) -> None:
        doc = self.docs.docs[self.doc_id]
        told = self.docs.told.setdefault(self.doc_id, {})
        self.outbox.extend(frame_of(a) for a in pass_answers(doc, local_pass(doc), told))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_the_client_and_the_owner_agree(data: st.DataObject) -> None:
    owner = Owner(PartitionDocuments(max_chars=100_000), "doc-1")
    owner.fold(
        DocumentOpenRequested(doc_id="doc-1", user_id="u", reply_to="me", create=True, text=START)
    )
    client = LiveDocument.opened(owner.outbox.popleft())
    log: list[DocumentEdited] = []  # every edit, in the order the owner folds them
    folded = 0
    snapshot: tuple[DocumentSnapshot, int] | None = None
    for _ in range(data.draw(st.integers(5, 40), label="steps")):
        step = data.draw(st.sampled_from(["edit", "edit", "fold", "pass", "hear", "snap"]))
        if step == "edit":
            offsets = boundaries(client.text)
            start = data.draw(st.sampled_from(offsets), label="start")
            end = data.draw(st.sampled_from([o for o in offsets if o >= start]), label="end")
            piece = data.draw(st.sampled_from(PIECES), label="piece")
            frame = client.edit([Change(start, end, piece)])
            log.append(
                DocumentEdited(
                    doc_id="doc-1",
                    user_id="u",
                    reply_to="me",
                    version=frame["version"],
                    changes=[DocChange(**c) for c in frame["changes"]],
                )
            )
        elif step == "fold" and folded < len(log):
            owner.fold(log[folded])
            folded += 1
        elif step == "pass":
            owner.analyze()
        elif step == "hear" and owner.outbox:
            client.receive(owner.outbox.popleft())
        elif step == "snap" and snapshot is None:
            owner.docs.next_offset = owner.offset
            snapshots, _ = owner.docs.take_snapshots()
            if snapshots:
                snapshot = (snapshots[0], folded)
    # Everything delivered, then a last pass, heard too.
    for command in log[folded:]:
        owner.fold(command)
    owner.analyze()
    while owner.outbox:
        client.receive(owner.outbox.popleft())
    doc = owner.docs.docs["doc-1"]
    assert client.text == doc.text and client.version == doc.version
    assert client.acked == doc.version
    assert client.analyzed is not None and client.analyzed["version"] == doc.version
    assert {(m.id, m.start_utf16, m.end_utf16) for m in client.marks.values()} == {
        (s.id, s.start_utf16, s.end_utf16) for s in doc.live.values()
    }
    for mark in client.marks.values():
        assert client.quote_of(mark) == mark.event["quote"]
    assert client.analyzed["suggestions"] == len(client.marks)
    # Insights are told only when they change, and the client still holds this text's.
    heard = {f: (e["summary"], e.get("metrics")) for f, e in client.insights.items()}
    assert heard == {i.focus: (i.summary, i.metrics or None) for i in insights_of(doc)}
    assert client.analyzed["paragraphs"] == client.text.count("\n") + 1
    if snapshot is not None:
        # A new owner: the snapshot, then the log after the place committed with it.
        taken, at = snapshot
        fresh = PartitionDocuments(max_chars=100_000)
        fresh.load(DocumentSnapshot.model_validate_json(taken.model_dump_json()))
        for offset, command in enumerate(log[at:], taken.offset + 1):
            fresh.fold(command, offset)
        rebuilt = fresh.docs["doc-1"]
        assert (rebuilt.text, rebuilt.version) == (doc.text, doc.version)
        local_pass(rebuilt)
        for s in rebuilt.live.values():
            units = rebuilt.text.encode("utf-16-le")
            assert units[2 * s.start_utf16 : 2 * s.end_utf16].decode("utf-16-le") == s.quote
