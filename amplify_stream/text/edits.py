"""Edits to a live document's text, in UTF-16 offsets as editors count (docs/protocol.md
section 6), and the rule that moves the spans of its live suggestions along.

A ``doc.edit`` carries a list of changes; each replaces ``[start_utf16, end_utf16)`` of
the text the change before it left. The shifting rule, applied change by change: a span
after the change moves by what the change inserted or removed; a change that overlaps the
span, or inserts strictly inside it, retracts it; a span before the change stays. A
change that only touches a span's edge (ends at its start, or starts at its end) does not
overlap it. Clients apply the same rule to the spans they hold, so both agree between
messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace


class InvalidChange(ValueError):
    """A change that cannot apply to the text: offsets out of range, a start after its
    end, or an offset inside a surrogate pair. Nothing of its edit is applied."""


@dataclass(frozen=True, slots=True)
class Change:
    start_utf16: int
    end_utf16: int
    text: str

    @property
    def delta_utf16(self) -> int:
        """How far the change moves what comes after it, in UTF-16 units."""
        return utf16_length(self.text) - (self.end_utf16 - self.start_utf16)


@dataclass(frozen=True, slots=True)
class LiveSpan:
    """Where a live suggestion sits, in UTF-16 units of the current text."""

    id: str
    start_utf16: int
    end_utf16: int


def utf16_length(text: str) -> int:
    if text.isascii():  # O(1) in CPython: the string knows
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def code_point_index(text: str, offset_utf16: int) -> int:
    """The code point index at UTF-16 ``offset_utf16`` of ``text``; ``InvalidChange`` when
    it is outside the text or between the two halves of a surrogate pair."""
    if offset_utf16 < 0:
        raise InvalidChange(f"offset {offset_utf16} is negative")
    # A keystroke's hot path: in text without characters beyond the BMP (checked in C:
    # ASCII in O(1), else by the UTF-16 length) a code point is one unit.
    if text.isascii() or len(text.encode("utf-16-le")) == 2 * len(text):
        if offset_utf16 > len(text):
            raise InvalidChange(f"offset {offset_utf16} is past the end of the text ({len(text)})")
        return offset_utf16
    units = 0
    for index, char in enumerate(text):
        if units == offset_utf16:
            return index
        units += 2 if ord(char) > 0xFFFF else 1
        if units > offset_utf16:
            raise InvalidChange(f"offset {offset_utf16} splits a surrogate pair")
    if units == offset_utf16:
        return len(text)
    raise InvalidChange(f"offset {offset_utf16} is past the end of the text ({units})")


def apply_change(text: str, change: Change) -> str:
    if change.start_utf16 > change.end_utf16:
        raise InvalidChange(
            f"a change starts after its end ({change.start_utf16} > {change.end_utf16})"
        )
    start = code_point_index(text, change.start_utf16)
    end = code_point_index(text, change.end_utf16)
    return text[:start] + change.text + text[end:]


def apply_changes(text: str, changes: Iterable[Change]) -> str:
    """The text after every change, each on what the one before left; ``InvalidChange``
    (and nothing applied: the caller keeps the text it had) when one cannot apply."""
    for change in changes:
        text = apply_change(text, change)
    return text


def shift(spans: Sequence[LiveSpan], change: Change) -> tuple[list[LiveSpan], list[str]]:
    """The spans after one change, and the ids of those it retracted."""
    kept: list[LiveSpan] = []
    retracted: list[str] = []
    a, b = change.start_utf16, change.end_utf16
    for span in spans:
        s, e = span.start_utf16, span.end_utf16
        overlaps = a < e and b > s if a < b else s < a < e
        if overlaps:
            retracted.append(span.id)
        elif b <= s:
            kept.append(
                replace(
                    span,
                    start_utf16=s + change.delta_utf16,
                    end_utf16=e + change.delta_utf16,
                )
            )
        else:
            kept.append(span)
    return kept, retracted


def shift_all(
    spans: Sequence[LiveSpan], changes: Iterable[Change]
) -> tuple[list[LiveSpan], list[str]]:
    """``shift`` change by change: the spans after all of them, and every id retracted."""
    live, retracted = list(spans), []
    for change in changes:
        live, gone = shift(live, change)
        retracted += gone
    return live, retracted
