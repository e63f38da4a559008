"""The client's bookkeeping for automatic resume: exactly once, in order, and only the
current attempt's rewrite."""

from __future__ import annotations

from typing import Any

from amplify_stream.client.feed import StoryFeed, cursor_position


def event(kind: str, cursor: str | None, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "story_id": "s1", "cursor": cursor, **fields}


def delivered(feed: StoryFeed, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if feed.accept(e)]


def test_cursor_position() -> None:
    assert cursor_position("2-41") == (2, 41)
    assert cursor_position("opaque") is None
    assert cursor_position("a-1") is None


def test_a_replayed_prefix_is_delivered_once() -> None:
    feed = StoryFeed()
    first = [
        event("story.accepted", None),
        event("enhancement.started", "1-5", attempt=1),
        event("enhancement.delta", "1-6", attempt=1, text="Once "),
    ]
    assert delivered(feed, first) == first
    assert (feed.story_id, feed.cursor) == ("s1", "1-6")
    # A resubmission with the same idempotency key replays from the start.
    replay = [
        event("story.accepted", None),
        *first[1:],
        event("enhancement.delta", "1-9", attempt=1, text="upon"),
    ]
    assert delivered(feed, replay) == replay[-1:]
    assert feed.text == "Once upon"


def test_offsets_compare_as_numbers() -> None:
    feed = StoryFeed(story_id="s1", cursor="0-9")
    assert feed.accept(event("insight", "0-10"))
    assert not feed.accept(event("insight", "0-10"))


def test_a_reset_drops_the_earlier_attempt() -> None:
    feed = StoryFeed(story_id="s1")
    events = [
        event("enhancement.started", "0-1", attempt=1),
        event("enhancement.delta", "0-2", attempt=1, text="stale "),
        event("enhancement.reset", "0-3", attempt=2, reason="worker restarted"),
        event("enhancement.delta", "0-4", attempt=1, text="straggler "),
        event("enhancement.started", "0-5", attempt=2),
        event("enhancement.delta", "0-6", attempt=2, text="fresh"),
    ]
    out = delivered(feed, events)
    assert [e["cursor"] for e in out] == ["0-1", "0-2", "0-3", "0-5", "0-6"]
    assert feed.text == "fresh"
    assert feed.attempt == 2


def test_nothing_after_story_completed_and_other_stories_ignored() -> None:
    feed = StoryFeed(story_id="s1")
    assert not feed.accept({**event("insight", "0-1"), "story_id": "s2"})
    assert feed.accept(event("story.completed", "0-2", status="failed"))
    assert feed.done and feed.status == "failed"
    assert not feed.accept(event("insight", "0-3"))


def test_events_without_a_cursor_pass() -> None:
    feed = StoryFeed(story_id="s1", cursor="0-4")
    assert feed.accept({"type": "pong"})
    assert feed.cursor == "0-4"
