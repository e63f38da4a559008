"""The aggregates behind ``amplify-stream watch``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from amplify_stream.analytics import (
    MAX_SAMPLES,
    OutcomeStats,
    parse_at,
    percentile,
    rates,
    render,
)

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


def feedback(action: str, rule: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"type": "suggestion.feedback", "user_id": "u1", "action": action, "rule": rule} | (
        fields
    )


def test_rates_count_the_answers_only() -> None:
    assert rates({"accepted": 1, "dismissed": 1, "rule_off": 2, "rule_on": 5}) == (0.25, 0.75)
    assert rates({"accepted": 2, "dismissed": 1}) == (0.6667, 0.3333)
    assert rates({"undismissed": 1, "rule_on": 1}) == (None, None)
    assert rates({}) == (None, None)


def test_feedback_per_rule() -> None:
    stats = OutcomeStats()
    for event in (
        feedback("accepted", "dialogue.adverb_tag", scope="suggestion"),
        feedback("accepted", "plot.intensifier"),
        feedback("dismissed", "plot.intensifier"),
        feedback("dismissed", "plot.intensifier"),
        feedback("undismissed", "plot.intensifier"),
        feedback("rule_off", "plot.intensifier", scope="everywhere"),
        feedback("rule_on", "setting.opening", scope="document"),
        feedback("word_added", word="Maura", scope="everywhere"),
        feedback("word_added", word="Zed"),
        feedback("word_removed", word="Zed"),
        feedback("accepted"),  # a suggestion that named no rule
        feedback("frowned", "plot.intensifier"),  # an action added later: counted apart
    ):
        stats.add(event)
    summary = stats.snapshot(NOW)["suggestion_feedback"]
    assert summary == {
        "rules": {
            "-": {
                "accepted": 1,
                "dismissed": 0,
                "undismissed": 0,
                "rule_off": 0,
                "rule_on": 0,
                "acceptance_rate": 1.0,
                "dismissal_rate": 0.0,
            },
            "dialogue.adverb_tag": {
                "accepted": 1,
                "dismissed": 0,
                "undismissed": 0,
                "rule_off": 0,
                "rule_on": 0,
                "acceptance_rate": 1.0,
                "dismissal_rate": 0.0,
            },
            "plot.intensifier": {
                "accepted": 1,
                "dismissed": 2,
                "undismissed": 1,
                "rule_off": 1,
                "rule_on": 0,
                "frowned": 1,
                "acceptance_rate": 0.25,
                "dismissal_rate": 0.75,
            },
            "setting.opening": {
                "accepted": 0,
                "dismissed": 0,
                "undismissed": 0,
                "rule_off": 0,
                "rule_on": 1,
                "acceptance_rate": None,
                "dismissal_rate": None,
            },
        },
        "words": {"word_added": 2, "word_removed": 1},
    }
    assert stats.snapshot(NOW)["stories_total"]["completed"] == 0  # stories untouched


def test_render_shows_the_feedback_table() -> None:
    stats = OutcomeStats()
    assert "feedback by rule" in render(stats.snapshot(NOW))
    assert "  none" in render(stats.snapshot(NOW)).split("feedback by rule")[1]
    for event in (
        feedback("accepted", "plot.intensifier"),
        feedback("dismissed", "plot.intensifier"),
        feedback("rule_off", "plot.intensifier"),
        feedback("rule_on", "setting.opening"),
        feedback("word_added", word="Maura"),
    ):
        stats.add(event)
    lines = render(stats.snapshot(NOW)).splitlines()
    header = next(line for line in lines if line.startswith("feedback by rule"))
    assert header.split()[3:] == [
        "accepted",
        "dismissed",
        "undismissed",
        "rule_off",
        "rule_on",
        "accept%",
        "dismiss%",
    ]
    assert any(
        line.split() == ["plot.intensifier", "1", "1", "0", "1", "0", "33%", "67%"]
        for line in lines
    )
    assert any(
        line.split() == ["setting.opening", "0", "0", "0", "0", "1", "-", "-"] for line in lines
    )
    assert lines[-1] == "words vouched for: 1 added, 0 removed"
