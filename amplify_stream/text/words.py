"""The word at a position, as a reader sees it: what a speech engine's word event
highlights, punctuation around it left out."""

from __future__ import annotations

import unicodedata

# Clause punctuation that parts words even without spaces ("yes—no", "wait…what").
_WORD_BREAKS = frozenset("\u2014\u2013\u2015\u2026")


def _parts_words(char: str) -> bool:
    return char.isspace() or char in _WORD_BREAKS


def _is_punctuation(char: str) -> bool:
    return unicodedata.category(char)[0] == "P"


def word_at(text: str, index: int) -> tuple[int, int] | None:
    """The span ``(start, end)`` of the word that ``text[index]`` belongs to: the run of
    characters between whitespace (or dashes, ellipses), less the punctuation around it
    ("didn't", "U.S.A", "$5,000", "😀"). None when ``index`` is outside the text, on a
    break, or in a run of punctuation only."""
    if not 0 <= index < len(text) or _parts_words(text[index]):
        return None
    start, end = index, index + 1
    while start > 0 and not _parts_words(text[start - 1]):
        start -= 1
    while end < len(text) and not _parts_words(text[end]):
        end += 1
    while start < end and _is_punctuation(text[start]):
        start += 1
    while end > start and _is_punctuation(text[end - 1]):
        end -= 1
    return (start, end) if start < end else None
