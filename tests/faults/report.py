"""The report of a fault test: one line of counts per test in ``test-artifacts/faults.txt``
(and on stdout), ``FAULTS <name>: trials=N accepted=N completed=N lost=N duplicated=N``,
then its details indented."""

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

    @property
    def line(self) -> str:
        return (
            f"FAULTS {self.name}: trials={self.trials} accepted={self.accepted} "
            f"completed={self.completed} lost={self.lost} duplicated={self.duplicated}"
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
    """Counts from the outcome topic: completed = accepted stories with a
    ``story.completed`` there; lost = accepted without one; duplicated = with several."""
    ids = list(dict.fromkeys(accepted))
    completions = {sid: len(outcomes.completions(sid)) for sid in ids}
    completed = sum(1 for n in completions.values() if n >= 1)
    duplicated = sum(1 for n in completions.values() if n > 1)
    lost_ids = [sid for sid, n in completions.items() if n == 0]
    if lost_ids:
        details.append(f"lost: {lost_ids[:10]}")
    dup = {sid: n for sid, n in completions.items() if n > 1}
    if dup:
        details.append(f"story.completed more than once: {dict(list(dup.items())[:10])}")
    return report(Counts(name, trials, len(ids), completed, len(lost_ids), duplicated, details))


_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_NUMBER = re.compile(r"\b\d+\b")


def summarize(failures: list[str], examples: int = 12) -> list[str]:
    """How many failures of each kind (ids and numbers blanked), then the first few."""
    kinds = Counter(_NUMBER.sub("N", _ID.sub("<story>", f)) for f in failures)
    lines = [f"{n} x {kind}" for kind, n in kinds.most_common()]
    return [*lines, *(f"e.g. {f}" for f in failures[:examples])] if failures else []
