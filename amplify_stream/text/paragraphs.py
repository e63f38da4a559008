"""Paragraphs: a blank line separates them; a text with no blank line at all has one per
line (verse, one paragraph per line, a title over its story). A single line break in a
text that has blank lines is a wrap inside a paragraph (hard-wrapped prose)."""

from __future__ import annotations

import re

_BLANK_LINE = re.compile(r"\n[^\S\n]*\n")
_BLANK_LINE_BREAK = re.compile(r"\n[^\S\n]*\n\s*")
_LINE_BREAK = re.compile(r"\n\s*")


def has_blank_line(text: str) -> bool:
    """Whether ``text`` separates paragraphs by blank lines (else: one per line)."""
    return _BLANK_LINE.search(text) is not None


def paragraph_spans(text: str, *, wrapped: bool = False) -> list[tuple[int, int]]:
    """The ``(start, end)`` of each paragraph, without the whitespace around it; blank
    stretches give none. ``wrapped``: a single line break is a wrap, whatever the text
    (a paragraph taken out of a text with blank lines)."""
    breaks = _BLANK_LINE_BREAK if wrapped or has_blank_line(text) else _LINE_BREAK
    spans: list[tuple[int, int]] = []
    cursor = 0
    for bound in [*breaks.finditer(text), None]:
        raw_end = len(text) if bound is None else bound.start()
        chunk = text[cursor:raw_end]
        if chunk.strip():
            start = cursor + len(chunk) - len(chunk.lstrip())
            spans.append((start, raw_end - (len(chunk) - len(chunk.rstrip()))))
        if bound is not None:
            cursor = bound.end()
    return spans
