"""Live aggregates of the outcome topic (``amplify-stream watch``): pure, fed one event at
a time, so the same code serves the terminal view, the JSON lines and the unit tests.

- stories per minute by status: ``story.completed`` whose ``at`` lies in the last
  ``window_s`` seconds before ``now``, and totals since the watch started;
- failure codes of ``enhancement.failed`` and ``narration.failed``;
- time to first token (``enhancement.completed`` ``timings.first_token_ms``), to first
  audio (``narration.completed`` ``timings.first_audio_ms``) and whole story time
  (``story.completed`` ``timings.total_ms``) as p50/p95/p99 of the latest samples;
- the writer's say (``suggestion.feedback``) per rule: how often each action was taken,
  and of the suggestions writers answered, the share they accepted and the share they
  threw away, to learn which rules writers keep.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

STATUSES = ("completed", "failed", "cancelled")
QUANTILES = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))
# The latency samples kept: percentiles describe the recent traffic, in bounded memory.
MAX_SAMPLES = 10_000
# suggestion.feedback: the actions about a rule's suggestions, and about words (no rule).
RULE_ACTIONS = ("accepted", "dismissed", "undismissed", "rule_off", "rule_on")
WORD_ACTIONS = ("word_added", "word_removed")
# A writer's answer to a suggestion: kept it, or threw it (or its whole rule) away. The
# take-backs (undismissed, rule_on) are counted, not netted out of the rates.
ANSWERS = ("accepted", "dismissed", "rule_off")
FEEDBACK_COLUMNS = (*RULE_ACTIONS, "accept%", "dismiss%")
# Feedback that names no rule (a provider's suggestion without one).
NO_RULE = "-"


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of sorted values (``None`` when there are none)."""
    if not ordered:
        return None
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def parse_at(at: object) -> float | None:
    """An event's RFC 3339 ``at`` as epoch seconds; ``None`` when it is not one."""
    if not isinstance(at, str):
        return None
    try:
        parsed = datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass
class Latency:
    samples: deque[float] = field(default_factory=lambda: deque(maxlen=MAX_SAMPLES))

    def add(self, value: object) -> None:
        number = _number(value)
        if number is not None:
            self.samples.append(number)

    def summary(self) -> dict[str, float | int | None]:
        ordered = sorted(self.samples)
        summary: dict[str, float | int | None] = {"count": len(ordered)}
        for name, q in QUANTILES:
            value = percentile(ordered, q)
            summary[name] = None if value is None else round(value, 1)
        return summary


def rates(counts: Mapping[str, int]) -> tuple[float | None, float | None]:
    """Acceptance and dismissal rates of a rule: accepted, and dismissed or turned off, out
    of accepted + dismissed + rule_off (None when writers answered none of them)."""
    answered = sum(counts.get(a, 0) for a in ANSWERS)
    if not answered:
        return None, None
    thrown = counts.get("dismissed", 0) + counts.get("rule_off", 0)
    return round(counts.get("accepted", 0) / answered, 4), round(thrown / answered, 4)


@dataclass
class Feedback:
    """``suggestion.feedback`` counted by rule and action (words apart: they have no rule)."""

    by_rule: dict[str, Counter[str]] = field(default_factory=dict)
    words: Counter[str] = field(default_factory=Counter)

    def add(self, event: Mapping[str, Any]) -> None:
        action = str(event.get("action"))
        if action in WORD_ACTIONS:
            self.words[action] += 1
            return
        rule = event.get("rule")
        key = rule if isinstance(rule, str) and rule else NO_RULE
        self.by_rule.setdefault(key, Counter())[action] += 1

    def summary(self) -> dict[str, Any]:
        rules: dict[str, dict[str, Any]] = {}
        for rule, counts in sorted(self.by_rule.items()):
            actions = [*RULE_ACTIONS, *sorted(set(counts) - set(RULE_ACTIONS))]
            accepted, dismissed = rates(counts)
            rules[rule] = {a: counts[a] for a in actions} | {
                "acceptance_rate": accepted,
                "dismissal_rate": dismissed,
            }
        return {"rules": rules, "words": {a: self.words[a] for a in WORD_ACTIONS}}


@dataclass
class OutcomeStats:
    window_s: float = 60.0
    events: int = 0
    totals: Counter[str] = field(default_factory=Counter)
    # (at, status) of recent story.completed events, roughly in arrival order.
    recent: deque[tuple[float, str]] = field(default_factory=deque)
    failures: dict[str, Counter[str]] = field(
        default_factory=lambda: {"enhancement": Counter(), "narration": Counter()}
    )
    first_token_ms: Latency = field(default_factory=Latency)
    first_audio_ms: Latency = field(default_factory=Latency)
    story_ms: Latency = field(default_factory=Latency)
    feedback: Feedback = field(default_factory=Feedback)

    def add(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        timings = event.get("timings")
        timings = timings if isinstance(timings, Mapping) else {}
        self.events += 1
        if kind == "story.completed":
            status = str(event.get("status"))
            self.totals[status] += 1
            at = parse_at(event.get("at"))
            if at is not None:
                self.recent.append((at, status))
            self.story_ms.add(timings.get("total_ms"))
        elif kind == "enhancement.completed":
            self.first_token_ms.add(timings.get("first_token_ms"))
        elif kind == "narration.completed":
            self.first_audio_ms.add(timings.get("first_audio_ms"))
        elif kind in ("enhancement.failed", "narration.failed"):
            error = event.get("error")
            code = error.get("code") if isinstance(error, Mapping) else None
            self.failures[str(kind).split(".")[0]][str(code or "unknown")] += 1
        elif kind == "suggestion.feedback":
            self.feedback.add(event)

    def snapshot(self, now: float) -> dict[str, Any]:
        since = now - self.window_s
        while self.recent and self.recent[0][0] < since:
            self.recent.popleft()
        in_window = Counter(status for at, status in self.recent if since <= at <= now)
        per_minute = 60.0 / self.window_s
        return {
            "at": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
            "events": self.events,
            "window_s": self.window_s,
            "stories_per_minute": {
                s: round(in_window[s] * per_minute, 2) for s in _statuses(in_window)
            },
            "stories_total": {s: self.totals[s] for s in _statuses(self.totals)},
            "failures": {
                stage: dict(sorted(codes.items())) for stage, codes in self.failures.items()
            },
            "first_token_ms": self.first_token_ms.summary(),
            "first_audio_ms": self.first_audio_ms.summary(),
            "story_total_ms": self.story_ms.summary(),
            "suggestion_feedback": self.feedback.summary(),
        }


def _statuses(counts: Counter[str]) -> list[str]:
    return [*STATUSES, *sorted(set(counts) - set(STATUSES))]


def render(snapshot: Mapping[str, Any]) -> str:
    """The snapshot as a few lines of plain text for a terminal."""
    per_minute = snapshot["stories_per_minute"]
    totals = snapshot["stories_total"]
    lines = [
        f"amplify outcomes at {snapshot['at']}  ({snapshot['events']} events read)",
        "",
        f"{'stories':<12}{'per minute':>12}{'total':>10}",
    ]
    lines += [f"{status:<12}{per_minute[status]:>12g}{totals[status]:>10}" for status in totals]
    lines += ["", f"{'latency ms':<16}{'p50':>10}{'p95':>10}{'p99':>10}{'n':>8}"]
    for name in ("first_token_ms", "first_audio_ms", "story_total_ms"):
        s = snapshot[name]
        cells = "".join(f"{_ms(s[q]):>10}" for q, _ in QUANTILES)
        lines.append(f"{name.removesuffix('_ms'):<16}{cells}{s['count']:>8}")
    lines += ["", "failures"]
    failures = [
        f"  {stage:<12}{code:<24}{count:>6}"
        for stage, codes in snapshot["failures"].items()
        for code, count in codes.items()
    ]
    lines += failures or ["  none"]
    return "\n".join([*lines, "", *_feedback_lines(snapshot["suggestion_feedback"])])


def _feedback_lines(feedback: Mapping[str, Any]) -> list[str]:
    """One row per rule: its count of each action, then its acceptance and dismissal rates
    (the columns are named as in the JSON)."""
    rules: Mapping[str, Mapping[str, Any]] = feedback["rules"]
    width = max([len("feedback by rule"), *map(len, rules)])
    lines = [_columns("feedback by rule", width, FEEDBACK_COLUMNS)]
    for rule, row in rules.items():
        counts = [str(row[a]) for a in RULE_ACTIONS]
        shares = [_percent(row["acceptance_rate"]), _percent(row["dismissal_rate"])]
        lines.append(_columns(rule, width, [*counts, *shares]))
    if not rules:
        lines.append("  none")
    words = feedback["words"]
    lines.append(f"words vouched for: {words['word_added']} added, {words['word_removed']} removed")
    return lines


def _columns(first: str, width: int, cells: Sequence[str]) -> str:
    right = (f"{c:>{len(h) + 2}}" for c, h in zip(cells, FEEDBACK_COLUMNS, strict=True))
    return f"{first:<{width}}" + "".join(right)


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.0f}%"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"
