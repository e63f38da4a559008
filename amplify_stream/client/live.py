"""A live document as a client holds it (docs/protocol.md section 6): its text and
version, the edits the service has not acknowledged yet, and the live suggestions with
their spans in the client's own text.

Pure: frames in, frames out. The client applies its own edits at once (the writer does
not wait for the network) and moves the spans it holds by the section's shifting rule;
a suggestion that arrives for an older version is moved through the edits made since,
so the client agrees with the service between messages.

The writer's say goes out the same way (``dismiss``, ``vouch``), but a mark stays until
the service retracts it: a refused ``doc.dismiss`` leaves the suggestion live, and every
other socket on the document hears the same ``doc.retracted``. What the service holds of
the writer's say about the document is its last ``doc.ignores`` (``ignores``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from amplify_stream.events.documents import DismissScope, WordScope
from amplify_stream.text.edits import Change, LiveSpan, apply_changes, shift_all

Frame = dict[str, Any]


@dataclass
class Mark:
    """A live suggestion as the client holds it: the ``doc.suggestion`` it came in, and its
    span moved into the client's current text (UTF-16 units), which runs ahead of the
    version the service sent it at."""

    id: str
    start_utf16: int
    end_utf16: int
    event: Frame

    @classmethod
    def at(cls, span: LiveSpan, event: Frame) -> Mark:
        return cls(span.id, span.start_utf16, span.end_utf16, event)

    @property
    def span(self) -> LiveSpan:
        return LiveSpan(self.id, self.start_utf16, self.end_utf16)


@dataclass
class LiveDocument:
    doc_id: str
    text: str
    version: int
    marks: dict[str, Mark] = field(default_factory=dict)
    # The version the service has acknowledged (every edit up to it is durable).
    acked: int = 0
    # Each version's changes, from the oldest a suggestion may still be placed from.
    history: dict[int, list[Change]] = field(default_factory=dict)
    analyzed: Frame | None = None
    insights: dict[str, Frame] = field(default_factory=dict)
    # The last doc.ignores; None while the service has said nothing (on an open, it
    # tells them only when there are any).
    ignores: Frame | None = None

    @classmethod
    def opened(cls, frame: Frame) -> LiveDocument:
        return cls(frame["doc_id"], frame["text"], frame["version"], acked=frame["version"])

    def edit(self, changes: list[Change], request_id: str | None = None) -> Frame:
        """Apply ``changes`` here and now; the ``doc.edit`` frame that tells the service."""
        self.text = apply_changes(self.text, changes)
        self.version += 1
        self.history[self.version] = list(changes)
        self._move(changes)
        frame: Frame = {
            "type": "doc.edit",
            "doc_id": self.doc_id,
            "version": self.version,
            "changes": [
                {"start_utf16": c.start_utf16, "end_utf16": c.end_utf16, "text": c.text}
                for c in changes
            ],
        }
        if request_id is not None:
            frame["request_id"] = request_id
        return frame

    def dismiss(
        self,
        suggestion_id: str | None = None,
        *,
        rule: str | None = None,
        scope: DismissScope = "suggestion",
        undo: bool = False,
        request_id: str | None = None,
    ) -> Frame:
        """The ``doc.dismiss`` frame: this suggestion never again in this document, or its
        rule (or ``rule``, by name) off in the ``document`` or ``everywhere``; with
        ``undo``, the dismissal of ``suggestion_id`` or the ``rule`` taken back."""
        frame: Frame = {"type": "doc.dismiss", "doc_id": self.doc_id, "scope": scope}
        optional = {"id": suggestion_id, "rule": rule, "request_id": request_id}
        frame |= {name: value for name, value in optional.items() if value is not None}
        if undo:
            frame["undo"] = True
        return frame

    def vouch(
        self,
        word: str,
        *,
        scope: WordScope = "document",
        undo: bool = False,
        request_id: str | None = None,
    ) -> Frame:
        """The ``doc.word`` frame: ``word`` (a name, a coinage, as spelled) is right, in this
        document or ``everywhere``; the findings about it go."""
        frame: Frame = {"type": "doc.word", "doc_id": self.doc_id, "word": word, "scope": scope}
        if undo:
            frame["undo"] = True
        if request_id is not None:
            frame["request_id"] = request_id
        return frame

    def _move(self, changes: list[Change]) -> None:
        kept, _ = shift_all([m.span for m in self.marks.values()], changes)
        self.marks = {s.id: Mark.at(s, self.marks[s.id].event) for s in kept}

    def receive(self, frame: Frame) -> None:
        """Fold in an event of this document."""
        kind = frame["type"]
        if kind == "doc.ack":
            self.acked = max(self.acked, frame["version"])
            self._forget_history()
        elif kind == "doc.suggestion":
            self._place(frame)
        elif kind == "doc.retracted":
            for sid in frame["ids"]:
                self.marks.pop(sid, None)
        elif kind == "doc.insight":
            self.insights[frame["focus"]] = frame
        elif kind == "doc.analyzed":
            self.analyzed = frame
        elif kind == "doc.ignores":
            self.ignores = frame

    def _place(self, frame: Frame) -> None:
        span = LiveSpan(frame["id"], frame["start_utf16"], frame["end_utf16"])
        since = [c for v in range(frame["version"] + 1, self.version + 1) for c in self.history[v]]
        kept, _ = shift_all([span], since)
        if kept:
            self.marks[span.id] = Mark.at(kept[0], frame)

    def _forget_history(self) -> None:
        # Suggestions come for versions the service has read, never below the acked one
        # less the edits still in flight; keep a margin of what was acknowledged.
        for v in [v for v in self.history if v <= self.acked - 1024]:
            del self.history[v]

    def quote_of(self, mark: Mark) -> str:
        """The text a mark covers now (UTF-16 offsets into the client's text)."""
        encoded = self.text.encode("utf-16-le")
        return encoded[2 * mark.start_utf16 : 2 * mark.end_utf16].decode("utf-16-le")
