"""Completed sentences of a text that arrives in pieces, for sentence-pipelined narration.

The narrator can start speaking the first sentence while the rest of the rewrite is
still streaming; a sentence is complete once its terminator is followed by whitespace
(so "3.5" or "e.g." in the middle of a piece are not cut), or at a line break.
"""

from __future__ import annotations

import re

# A terminator (with closing quotes or brackets) before whitespace and a word that does
# not go on in lower case ('"Why?" she asked.' is one sentence); or a line break.
_BOUNDARY = re.compile(r"""[.!?\u2026]+["'\u201d\u2019)\]]*(?=\s+(\S))|\n""")
_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "st", "prof", "sr", "jr", "vs", "etc", "e.g", "i.e", "mt", "no"}
)


class SentenceStream:
    """``feed`` pieces of text; get back the sentences completed so far, with their
    offsets in the whole text. ``finish`` returns what is left."""

    def __init__(self) -> None:
        self._buffer = ""
        self._buffer_start = 0  # offset of the buffer in the whole text

    def feed(self, piece: str) -> list[tuple[int, str]]:
        self._buffer += piece
        found: list[tuple[int, str]] = []
        cut = 0
        for match in _BOUNDARY.finditer(self._buffer):
            end = match.end()
            if match.group() != "\n" and (
                match.group(1).islower() or _is_abbreviation(self._buffer, match.start())
            ):
                continue
            found.extend(self._sentence(cut, end))
            cut = end
        if cut:
            self._buffer_start += cut
            self._buffer = self._buffer[cut:]
        return found

    def finish(self) -> list[tuple[int, str]]:
        rest = self._sentence(0, len(self._buffer))
        self._buffer_start += len(self._buffer)
        self._buffer = ""
        return rest

    def _sentence(self, start: int, end: int) -> list[tuple[int, str]]:
        raw = self._buffer[start:end]
        stripped = raw.strip()
        if not any(ch.isalnum() for ch in stripped):
            return []  # nothing to say: space or punctuation alone
        return [(self._buffer_start + start + raw.index(stripped), stripped)]


def _is_abbreviation(text: str, dot: int) -> bool:
    """``Mr.`` or ``e.g.``: a full stop that does not end a sentence."""
    if text[dot] != ".":
        return False
    word_start = dot
    while word_start > 0 and (text[word_start - 1].isalpha() or text[word_start - 1] == "."):
        word_start -= 1
    word = text[word_start:dot].lower()
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def split_sentences(text: str) -> list[tuple[int, str]]:
    """All sentences of a whole text, with their offsets."""
    stream = SentenceStream()
    return stream.feed(text) + stream.finish()
