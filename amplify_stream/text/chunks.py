"""Cutting long text into pieces a speech engine takes in one go. Each piece remembers its
offset, so spans found in it map back to the caller's text.
"""

from __future__ import annotations

import re
import unicodedata

# A sentence ends with . ! ? or … (then closing quotes or brackets) before whitespace or
# the end; CJK full stops need no space after them; a line break ends a line without
# punctuation (titles, verse).
_SENTENCE_END = re.compile(
    r"[.!?\u2026]+[\"'\u2019\u201d\u00bb)\]]*(?=\s|\Z)"
    r"|[\u3002\uff01\uff1f]+[\u300d\u300f\uff09]*"
    r"|\n"
)
_JOINERS = {"\u200d", "\u2060"}  # zero-width joiner, word joiner


def split_for_speech(text: str, max_chars: int) -> list[tuple[int, str]]:
    """Cut ``text`` into ``(offset, piece)`` pairs, each piece at most ``max_chars`` code
    points and ``text[offset:offset + len(piece)] == piece``.

    Pieces are packed greedily: a piece ends at the last sentence end that fits, else at
    the last whitespace that fits, else (one huge word) at ``max_chars`` without parting a
    character from its combining marks. Pieces carry no surrounding whitespace, and
    stretches of pure whitespace give no piece.
    """
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    pieces: list[tuple[int, str]] = []
    pos, n = 0, len(text)
    while True:
        while pos < n and text[pos].isspace():
            pos += 1
        if pos >= n:
            return pieces
        if n - pos <= max_chars:
            end = n
        else:
            limit = pos + max_chars
            end = _sentence_cut(text, pos, limit) or _space_cut(text, pos, limit)
            end = end or _hard_cut(text, pos, limit)
        piece = text[pos:end].rstrip()
        pieces.append((pos, piece))
        pos = end


def _sentence_cut(text: str, pos: int, limit: int) -> int:
    """The end of the last sentence in ``text[pos:limit]``, or 0."""
    best = 0
    # endpos one past the limit, so the lookahead sees the character after a sentence end.
    for match in _SENTENCE_END.finditer(text, pos, limit + 1):
        if pos < match.end() <= limit:
            best = match.end()
    return best


def _space_cut(text: str, pos: int, limit: int) -> int:
    """The last whitespace in ``text[pos + 1:limit + 1]`` (the piece ends before it), or 0."""
    for i in range(limit, pos, -1):
        if text[i].isspace():
            return i
    return 0


def _hard_cut(text: str, pos: int, limit: int) -> int:
    """``limit``, moved back so that no mark or joined character is cut from its base."""
    end = limit
    while end > pos + 1 and (
        unicodedata.category(text[end])[0] == "M"
        or text[end] in _JOINERS
        or text[end - 1] in _JOINERS
        or 0xFE00 <= ord(text[end]) <= 0xFE0F  # variation selectors
    ):
        end -= 1
    return end
