"""What each focus analyzer returns, and small helpers they share."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from itertools import islice
from typing import TypeVar

from amplify_stream.providers.base import InsightFound, SuggestionFound
from amplify_stream.providers.local.document import Document
from amplify_stream.providers.local.rules import rule

T = TypeVar("T")

# A story can trip one rule hundreds of times; past this many, more highlights of the same
# kind stop helping the writer. The insight metrics still count every occurrence.
MAX_PER_RULE = 40


@dataclass(frozen=True, slots=True)
class FocusReport:
    suggestions: tuple[SuggestionFound, ...]
    insight: InsightFound


def suggest(
    doc: Document,
    rule_id: str,
    start: int,
    end: int,
    message: str,
    replacement: str | None = None,
) -> SuggestionFound:
    """A suggestion of rule ``rule_id`` quoting exactly ``doc.text[start:end]``, with its
    exact offset."""
    return SuggestionFound(
        focus=rule(rule_id).focus,
        quote=doc.text[start:end],
        message=message,
        replacement=replacement,
        start=start,
        rule=rule_id,
    )


def summed(tallies: Sequence[T]) -> T:
    """Several texts' tallies (dataclasses of ints and tuples) as one: ints add up, tuples
    join in order. ``tallies`` must not be empty."""
    first = tallies[0]
    totals = {
        f.name: sum((getattr(t, f.name) for t in tallies[1:]), getattr(first, f.name))
        for f in fields(first)  # type: ignore[arg-type]
    }
    return type(first)(**totals)


def capped(items: Iterable[T], limit: int = MAX_PER_RULE) -> Iterator[T]:
    return islice(items, limit)


def share(part: float, whole: float) -> float:
    return round(part / whole, 3) if whole else 0.0


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``count(1, "line")`` -> "1 line"; ``count(2, "line")`` -> "2 lines"."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
