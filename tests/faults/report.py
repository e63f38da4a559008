"""The report of a fault test: one line of counts per test in ``test-artifacts/faults.txt``
(and on stdout), ``FAULTS <name>: trials=N accepted=N completed=N lost=N duplicated=N
failed=N unaccepted=N``, then its details indented."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tests.faults.topics import TopicLog

ROOT = Path(__file__).resolve().parents[2]
FAULTS_FILE = ROOT / "test-artifacts" / "faults.txt"
# Each test's process logs, in a folder of its own.
LOGS_DIR = ROOT / "test-artifacts" / "faults"


@dataclass
class Counts:
    name: str
    trials: int
    accepted: int
    completed: int
    lost: int
    duplicated: int
    details: list[str] = field(default_factory=list)
    # Accepted stories whose story.completed says another status than "completed".
    failed: int = 0
    # Stories with a story.completed that no client was told were accepted (a 202 or
    # story.accepted): a refused submission must never run.
    unaccepted: int = 0

    @property
    def line(self) -> str:
        return (
            f"FAULTS {self.name}: trials={self.trials} accepted={self.accepted} "
            f"completed={self.completed} lost={self.lost} duplicated={self.duplicated} "
            f"failed={self.failed} unaccepted={self.unaccepted}"
        )


def report(counts: Counts) -> Counts:
    """Print the counts line (and the details, indented) and append them to faults.txt."""
    lines = [counts.line, *(f"    {d}" for d in counts.details)]
    print("\n" + "\n".join(lines), flush=True)
    with FAULTS_FILE.open("a") as out:
        out.write("\n".join(lines) + "\n")
    return counts


def count_stories(
    name: str, trials: int, accepted: Iterable[str], outcomes: TopicLog, details: list[str]
) -> Counts:
    """Counts from the outcome topic: completed = accepted stories whose
    ``story.completed`` there says ``completed``; failed = those it says another status
    of; lost = accepted without one; duplicated = with several; unaccepted = stories
    completed there that were never accepted."""
    ids = list(dict.fromkeys(accepted))
    completions = {sid: len(outcomes.completions(sid)) for sid in ids}
    statuses = {sid: [e.get("status") for e in outcomes.completions(sid)] for sid in ids}
    completed = sum(1 for s in statuses.values() if s and s[0] == "completed")
    failed_ids = [sid for sid, s in statuses.items() if s and s[0] != "completed"]
    if failed_ids:
        details.append(f"ended not completed: { {sid: statuses[sid] for sid in failed_ids[:10]} }")
    known = set(ids)
    unaccepted_ids = sorted(
        {str(e["story_id"]) for e in outcomes.events() if e.get("type") == "story.completed"}
        - known
    )
    if unaccepted_ids:
        details.append(f"completed but never accepted: {unaccepted_ids[:10]}")
    duplicated = sum(1 for n in completions.values() if n > 1)
    lost_ids = [sid for sid, n in completions.items() if n == 0]
    if lost_ids:
        details.append(f"lost: {lost_ids[:10]}")
    dup = {sid: n for sid, n in completions.items() if n > 1}
    if dup:
        details.append(f"story.completed more than once: {dict(list(dup.items())[:10])}")
    counts = Counts(name, trials, len(ids), completed, len(lost_ids), duplicated, details)
    counts.failed, counts.unaccepted = len(failed_ids), len(unaccepted_ids)
    return report(counts)


_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_NUMBER = re.compile(r"\b\d+\b")


def summarize(failures: list[str], examples: int = 12) -> list[str]:
    """How many failures of each kind (ids and numbers blanked), then the first few."""
    kinds = Counter(_NUMBER.sub("N", _ID.sub("<story>", f)) for f in failures)
    lines = [f"{n} x {kind}" for kind, n in kinds.most_common()]
    return [*lines, *(f"e.g. {f}" for f in failures[:examples])] if failures else []
