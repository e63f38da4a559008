"""The Markdown of ``make quality``: the checkers side by side, then rule by rule."""

from __future__ import annotations

from typing import Any


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


def markdown(results: dict[str, Any]) -> str:
    checkers: dict[str, Any] = results["checkers"]
    corpus = results["corpus"]
    lines = [
        f"# Suggestion quality, {results['at']}",
        "",
        f"Clean corpus: {sum(corpus['clean'].values())} words "
        f"({', '.join(f'{k} {v}' for k, v in corpus['clean'].items())}). "
        f"Drafts: {corpus['drafts']} ({corpus['draft_words']} words).",
        "",
        "| checker | findings / 1,000 clean words | planted found (rule-visible kinds) "
        "| traps hit | inexact spans | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for name, f in checkers.items():
        lines.append(
            f"| {name} | {f['clean_per_1000_words']} | {f['planted_found']}/{f['planted']} "
            f"({_pct(f['planted_recall'])}) | {f['traps_hit_count']}/{f['traps']} "
            f"({_pct(f['traps_hit'])}) | {f['inexact_spans']} | {f['seconds']} |"
        )
    rewrite = results["rewrite"]
    lines += [
        "",
        f"Offline rewrite on the clean corpus: {rewrite['changes']} changes, "
        f"{rewrite['per_2000_words']} per 2,000 words.",
        "",
        "## Planted kinds (found by a finding of the kind's focus; any finding for harper and "
        "proselint)",
        "",
        "| kind | focus | marked | " + " | ".join(checkers) + " |",
        "|---|---|---|" + "---|" * len(checkers),
    ]
    first = next(iter(checkers.values()))
    for kind, k in first["kinds"].items():
        row = [kind + (" (comprehension)" if k["comprehension"] else ""), k["focus"], k["marked"]]
        row += [f"{c['kinds'][kind]['found']}" for c in checkers.values()]
        lines.append("| " + " | ".join(str(x) for x in row) + " |")
    lines += ["", "## Traps (good uses a naive rule flags)", ""]
    lines += ["| trap | marked | " + " | ".join(checkers) + " |"]
    lines += ["|---|---|" + "---|" * len(checkers)]
    for kind, t in first["traps_by_kind"].items():
        row = [kind, t["marked"], *(c["traps_by_kind"][kind]["hit"] for c in checkers.values())]
        lines.append("| " + " | ".join(str(x) for x in row) + " |")
    for name, f in checkers.items():
        lines += [
            "",
            f"## Rules of {name}",
            "",
            "| rule | clean | / 1,000 words | planted found | traps hit | on drafts |",
            "|---|---|---|---|---|---|",
        ]
        for rule, r in sorted(f["rules"].items(), key=lambda kv: -kv[1]["clean"]):
            lines.append(
                f"| {rule} | {r['clean']} | {r['clean_per_1000_words']} | {r['planted_found']} "
                f"| {r['traps_hit']} | {r['on_drafts']} |"
            )
    return "\n".join(lines) + "\n"
