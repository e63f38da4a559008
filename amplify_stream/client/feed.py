"""What a client has seen of one story: the pure bookkeeping behind automatic resume.

A resumed stream may repeat events the client already has (it resumes after the last
cursor it saw, but a resubmission with the same idempotency key replays from the start),
and a restarted enhancement (``enhancement.reset``) makes the deltas of earlier attempts
obsolete. ``StoryFeed.accept`` decides, event by event, what reaches the caller, so each
event is delivered exactly once and in cursor order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Event = dict[str, Any]


def cursor_position(cursor: str) -> tuple[int, int] | None:
    """``"2-41"`` -> ``(2, 41)``. Cursors are opaque to clients in general; this client
    belongs to the service, so it may order them. ``None`` for a foreign shape."""
    partition, sep, offset = cursor.partition("-")
    if sep and partition.isdigit() and offset.isdigit():
        return int(partition), int(offset)
    return None


@dataclass
class StoryFeed:
    story_id: str | None = None
    # The last cursor delivered: where a resume starts.
    cursor: str | None = None
    # The newest enhancement attempt seen; deltas of older ones are dropped.
    attempt: int = 0
    status: str | None = None
    # The rewrite so far: the deltas of the current attempt.
    _pieces: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.status is not None

    @property
    def text(self) -> str:
        return "".join(self._pieces)

    def accept(self, event: Event) -> bool:
        """Record ``event``; ``True`` when it should be delivered to the caller."""
        kind = event.get("type")
        if self.done:
            return False
        if kind == "story.accepted":
            # A resubmission (same idempotency key) is accepted again: deliver it once.
            if self.story_id is not None:
                return False
            self.story_id = event.get("story_id")
            return True
        story_id = event.get("story_id")
        if story_id is not None and self.story_id is not None and story_id != self.story_id:
            return False
        if not self._advance(event.get("cursor")):
            return False
        if not self._current_attempt(kind, event.get("attempt")):
            return False
        if kind == "enhancement.delta":
            self._pieces.append(str(event.get("text", "")))
        elif kind == "story.completed":
            self.status = str(event.get("status"))
        return True

    def _advance(self, cursor: object) -> bool:
        if not isinstance(cursor, str):
            return True  # replies of the gateway itself (pong, errors) carry no cursor
        new = cursor_position(cursor)
        old = cursor_position(self.cursor) if self.cursor is not None else None
        if new is not None and old is not None and new <= old:
            return False  # already delivered before the socket dropped
        self.cursor = cursor
        return True

    def _current_attempt(self, kind: object, attempt: object) -> bool:
        if not isinstance(attempt, int):
            return True
        if kind == "enhancement.reset" or (
            kind == "enhancement.started" and attempt > self.attempt
        ):
            self.attempt = max(self.attempt, attempt)
            self._pieces.clear()
        elif kind == "enhancement.delta":
            if attempt < self.attempt:
                return False  # a straggler of an abandoned attempt
            self.attempt = attempt
        return True
