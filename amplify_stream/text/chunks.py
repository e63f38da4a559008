"""Cutting long text into pieces a speech engine takes in one go. Each piece remembers its
offset, so spans found in it map back to the caller's text.
"""

from __future__ import annotations

import unicodedata
from bisect import bisect_right

from amplify_stream.text.sentences import sentence_spans

_JOINERS = {"\u200d", "\u2060"}  # zero-width joiner, word joiner


def split_for_speech(text: str, max_chars: int) -> list[tuple[int, str]]:
    """Cut ``text`` into ``(offset, piece)`` pairs, each piece at most ``max_chars`` code
    points and ``text[offset:offset + len(piece)] == piece``.

    Pieces are packed greedily: a piece ends at the last sentence end that fits (by the
    rule of ``sentences``, which the narration segments follow too), else at the last
    whitespace that fits, else (one huge word) at ``max_chars`` without parting a
    character from its combining marks. Pieces carry no surrounding whitespace, and
    stretches of pure whitespace give no piece.
    """
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    pieces: list[tuple[int, str]] = []
    pos, n = 0, len(text)
    ends = [end for _, end in sentence_spans(text)] if n > max_chars else []
    while True:
        while pos < n and text[pos].isspace():
            pos += 1
        if pos >= n:
            return pieces
        if n - pos <= max_chars:
            end = n
        else:
            limit = pos + max_chars
            end = _sentence_cut(ends, pos, limit) or _space_cut(text, pos, limit)
            end = end or _hard_cut(text, pos, limit)
        piece = text[pos:end].rstrip()
        pieces.append((pos, piece))
        pos = end


def _sentence_cut(ends: list[int], pos: int, limit: int) -> int:
    """The end of the last sentence in ``text[pos:limit]``, or 0."""
    i = bisect_right(ends, limit) - 1
    return ends[i] if i >= 0 and ends[i] > pos else 0


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
