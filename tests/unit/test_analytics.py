"""The aggregates behind ``amplify-stream watch``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from amplify_stream.analytics import MAX_SAMPLES, OutcomeStats, parse_at, percentile, render

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC).timestamp()


def at(seconds_ago: float) -> str:
    moment = datetime.fromtimestamp(NOW - seconds_ago, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def completed(status: str, seconds_ago: float = 1, total_ms: float = 1000) -> dict[str, Any]:
    return {
        "type": "story.completed",
        "status": status,
        "at": at(seconds_ago),
        "timings": {"total_ms": total_ms},
    }


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.50) == 50
    assert percentile(values, 0.95) == 95
    assert percentile(values, 0.99) == 99
    assert percentile([7.0], 0.99) == 7
    assert percentile([], 0.5) is None


def test_parse_at_reads_rfc3339() -> None:
    assert parse_at("2026-05-01T12:00:00.000Z") == NOW
    assert parse_at("2026-05-01T12:00:00") == NOW  # naive means UTC
    assert parse_at("yesterday") is None
    assert parse_at(None) is None


def test_stories_per_minute_count_the_window_only() -> None:
    stats = OutcomeStats(window_s=60)
    for event in (
        completed("completed", 5),
        completed("completed", 30),
        completed("failed", 59),
        completed("completed", 61),  # older than the window: totals only
        completed("cancelled", 600),
    ):
        stats.add(event)
    snapshot = stats.snapshot(NOW)
    assert snapshot["stories_per_minute"] == {"completed": 2, "failed": 1, "cancelled": 0}
    assert snapshot["stories_total"] == {"completed": 3, "failed": 1, "cancelled": 1}
    assert snapshot["events"] == 5


def test_a_shorter_window_is_scaled_to_a_minute() -> None:
    stats = OutcomeStats(window_s=10)
    stats.add(completed("completed", 2))
    assert stats.snapshot(NOW)["stories_per_minute"]["completed"] == 6


def test_failure_codes_by_stage() -> None:
    stats = OutcomeStats()
    stats.add({"type": "enhancement.failed", "error": {"code": "provider_error", "message": ""}})
    stats.add({"type": "enhancement.failed", "error": {"code": "provider_error", "message": ""}})
    stats.add({"type": "enhancement.failed", "error": {"code": "provider_unavailable"}})
    stats.add({"type": "narration.failed", "error": {"code": "tts_unavailable"}})
    stats.add({"type": "narration.failed"})  # malformed: still counted, as unknown
    assert stats.snapshot(NOW)["failures"] == {
        "enhancement": {"provider_error": 2, "provider_unavailable": 1},
        "narration": {"tts_unavailable": 1, "unknown": 1},
    }


def test_latency_percentiles() -> None:
    stats = OutcomeStats()
    for ms in range(1, 101):
        stats.add({"type": "enhancement.completed", "timings": {"first_token_ms": ms}})
        stats.add({"type": "narration.completed", "timings": {"first_audio_ms": ms * 10}})
    stats.add({"type": "enhancement.completed", "timings": {"first_token_ms": None}})
    stats.add({"type": "narration.completed", "timings": {"first_audio_ms": "soon"}})
    snapshot = stats.snapshot(NOW)
    assert snapshot["first_token_ms"] == {"count": 100, "p50": 50, "p95": 95, "p99": 99}
    assert snapshot["first_audio_ms"] == {"count": 100, "p50": 500, "p95": 950, "p99": 990}
    assert snapshot["story_total_ms"] == {"count": 0, "p50": None, "p95": None, "p99": None}


def test_samples_are_bounded() -> None:
    stats = OutcomeStats()
    for ms in range(MAX_SAMPLES + 500):
        stats.add({"type": "enhancement.completed", "timings": {"first_token_ms": ms}})
    summary = stats.snapshot(NOW)["first_token_ms"]
    assert summary["count"] == MAX_SAMPLES
    assert summary["p50"] >= 500  # the oldest samples went first


def test_unknown_statuses_and_events_do_not_break_it() -> None:
    stats = OutcomeStats()
    stats.add(completed("paused"))
    stats.add({"type": "something.new"})
    stats.add({"type": "story.completed", "status": "completed", "at": "not a time"})
    snapshot = stats.snapshot(NOW)
    assert snapshot["stories_total"] == {"completed": 1, "failed": 0, "cancelled": 0, "paused": 1}
    assert snapshot["stories_per_minute"]["paused"] == 1


def test_render_is_plain_text() -> None:
    stats = OutcomeStats()
    stats.add(completed("completed"))
    stats.add({"type": "enhancement.completed", "timings": {"first_token_ms": 120}})
    stats.add({"type": "narration.failed", "error": {"code": "tts_unavailable"}})
    text = render(stats.snapshot(NOW))
    assert "\x1b" not in text
    lines = text.splitlines()
    assert any(line.split() == ["completed", "1", "1"] for line in lines)
    assert any(line.split() == ["first_token", "120", "120", "120", "1"] for line in lines)
    assert any(line.split() == ["first_audio", "-", "-", "-", "0"] for line in lines)
    assert any(line.split() == ["narration", "tts_unavailable", "1"] for line in lines)
