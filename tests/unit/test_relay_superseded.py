"""The relay's filter of superseded attempts (``gateway.relay.Superseded``): records a
worker that lost the story had in flight when it froze never reach a client."""

from __future__ import annotations

from amplify_stream.bus.base import Record
from amplify_stream.events import headers_for
from amplify_stream.gateway.relay import Superseded


def record(event_type: str, attempt: int | None = None) -> Record:
    return Record("stream", 0, 0, "s", b"{}", tuple(headers_for(event_type, attempt=attempt)))


def test_an_older_attempt_after_a_newer_one_is_dropped_per_stage() -> None:
    superseded = Superseded()
    kept = [
        not superseded(r)
        for r in (
            record("enhancement.started", 1),
            record("enhancement.delta", 1),
            record("audio.started", 1),
            record("enhancement.reset", 2),
            record("enhancement.delta", 1),  # the zombie's, in flight: dropped
            record("suggestion", 1),  # likewise
            record("audio.chunk", 1),  # the narration's own count is still 1: kept
            record("enhancement.delta", 2),
            record("story.completed"),  # no attempt: always kept
        )
    ]
    assert kept == [True, True, True, True, False, False, True, True, True]


def test_a_repeated_start_of_an_attempt_is_dropped() -> None:
    """A start in flight when its worker froze lands after its successor's start of the
    same number: the second start is not relayed, the attempt's other records are."""
    superseded = Superseded()
    assert not superseded(record("enhancement.started", 1))
    assert not superseded(record("enhancement.delta", 1))
    assert superseded(record("enhancement.started", 1))
    assert not superseded(record("enhancement.delta", 1))
    assert not superseded(record("audio.started", 1))
    assert superseded(record("audio.started", 1))
