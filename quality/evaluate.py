"""The figures of ``make quality``: per checker and per rule, findings per 1,000 words of
clean prose, planted problems found in the drafts (a finding of the same focus
overlapping the span; any finding for the checkers without focus) and traps hit (any
finding overlapping the span)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from quality.corpus import COMPREHENSION, KIND_FOCUS, Mark, Text
from quality.findings import Found

Checker = Callable[[str], list[Found]]

# What the offline analyzer must hold on the committed corpus (the targets).
TARGETS = {
    "clean_per_1000_words": 5.0,
    "planted_recall": 0.80,
    "traps_hit": 0.15,
}


def per_1000(n: int, words: int) -> float:
    return round(1000 * n / words, 2) if words else 0.0


def ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def _hits(mark: Mark, found: Sequence[Found]) -> list[Found]:
    """The findings that find ``mark``: overlapping it, of its focus for a problem."""
    return [
        f
        for f in found
        if f.start < mark.end
        and mark.start < f.end
        and (mark.trap or f.focus is None or f.focus == mark.focus)
    ]


def score(check: Checker, clean: Sequence[Text], drafts: Sequence[Text]) -> dict[str, Any]:
    words = sum(t.words for t in clean)
    on_clean: Counter[str] = Counter()
    samples: dict[str, list[str]] = defaultdict(list)
    inexact = 0
    for text in clean:
        for f in check(text.text):
            on_clean[f.rule] += 1
            inexact += text.text[f.start : f.end] != f.quote
            if len(samples[f.rule]) < 5:
                samples[f.rule].append(f"{text.name}: {f.quote[:80]!r}")
    kinds: dict[str, Counter[str]] = defaultdict(Counter)  # kind -> planted / found
    traps: dict[str, Counter[str]] = defaultdict(Counter)  # kind -> planted / hit
    by_rule: dict[str, Counter[str]] = defaultdict(Counter)
    for draft in drafts:
        found = check(draft.text)
        inexact += sum(draft.text[f.start : f.end] != f.quote for f in found)
        for rule_found in found:
            by_rule[rule_found.rule]["on_drafts"] += 1
        for mark in draft.marks:
            hits = _hits(mark, found)
            tally = traps if mark.trap else kinds
            tally[mark.kind]["marked"] += 1
            tally[mark.kind]["hit"] += bool(hits)
            for rule in {h.rule for h in hits}:
                by_rule[rule]["traps_hit" if mark.trap else "planted_found"] += 1
    visible = [k for k in kinds if k not in COMPREHENSION]
    planted = sum(kinds[k]["marked"] for k in visible)
    found_planted = sum(kinds[k]["hit"] for k in visible)
    trap_total = sum(t["marked"] for t in traps.values())
    trap_hits = sum(t["hit"] for t in traps.values())
    rules = sorted(set(on_clean) | set(by_rule))
    return {
        "clean_words": words,
        "clean_findings": sum(on_clean.values()),
        "clean_per_1000_words": per_1000(sum(on_clean.values()), words),
        "planted": planted,
        "planted_found": found_planted,
        "planted_recall": ratio(found_planted, planted),
        "traps": trap_total,
        "traps_hit_count": trap_hits,
        "traps_hit": ratio(trap_hits, trap_total),
        "inexact_spans": inexact,
        "kinds": {
            k: {
                "focus": KIND_FOCUS[k],
                "comprehension": k in COMPREHENSION,
                "marked": kinds[k]["marked"],
                "found": kinds[k]["hit"],
                "recall": ratio(kinds[k]["hit"], kinds[k]["marked"]),
            }
            for k in sorted(kinds)
        },
        "traps_by_kind": {
            k: {"marked": t["marked"], "hit": t["hit"]} for k, t in sorted(traps.items())
        },
        "rules": {
            r: {
                "clean": on_clean[r],
                "clean_per_1000_words": per_1000(on_clean[r], words),
                "on_drafts": by_rule[r]["on_drafts"],
                "planted_found": by_rule[r]["planted_found"],
                "traps_hit": by_rule[r]["traps_hit"],
                "clean_samples": samples[r],
            }
            for r in rules
        },
    }


def held(figures: dict[str, Any]) -> dict[str, bool]:
    """Which of TARGETS a checker's figures meet."""
    return {
        "clean_per_1000_words": figures["clean_per_1000_words"] <= TARGETS["clean_per_1000_words"],
        "planted_recall": (figures["planted_recall"] or 0) >= TARGETS["planted_recall"],
        "traps_hit": (figures["traps_hit"] or 0) <= TARGETS["traps_hit"],
    }
