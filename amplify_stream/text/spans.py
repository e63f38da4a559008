"""Text spans: code point offsets (Python ``str`` indices), their UTF-16 equivalents, and
finding a provider's quote in the submitted text.

docs/protocol.md counts ``start``/``end`` in code points and ``start_utf16``/``end_utf16`` in
UTF-16 code units (what JavaScript strings index). The two differ only by one unit per
astral character (U+10000 and above: emoji, rare CJK) that comes before the offset.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Collection
from types import MappingProxyType

_ASTRAL = re.compile("[\U00010000-\U0010ffff]")

# Marks a model may swap for one another when it quotes: straight and typographic quotes,
# hyphens and dashes, three dots and the ellipsis character.
_DOUBLE_QUOTES = '"“”„‟«»″'
_SINGLE_QUOTES = "'‘’‚‛′`"  # noqa: RUF001 - look-alike marks are the point
_DASHES = "-‐‑‒–—―"  # noqa: RUF001 - look-alike marks are the point
_TOLERANT_TOKEN = re.compile(
    rf"(?P<space>\s+)|(?P<double>[{_DOUBLE_QUOTES}])|(?P<single>[{_SINGLE_QUOTES}])"
    rf"|(?P<dash>[{_DASHES}]+)|(?P<ellipsis>\.\.\.|…)|(?P<other>.)",
    re.DOTALL,
)
_TOLERANT_PATTERNS = MappingProxyType(
    {
        "space": r"\s+",
        "double": f"[{re.escape(_DOUBLE_QUOTES)}]",
        "single": f"[{re.escape(_SINGLE_QUOTES)}]",
        "dash": f"[{re.escape(_DASHES)}]+",
        "ellipsis": r"(?:\.\.\.|…)",
    }
)


class Utf16Index:
    """Code point index -> UTF-16 offset for one text, for many lookups.

    The positions of astral characters are gathered once, on the first lookup (O(n));
    each lookup is then a binary search over them (O(log k)), and O(1) for the usual text
    with no astral character at all.
    """

    __slots__ = ("_astral", "_length", "_text")

    def __init__(self, text: str) -> None:
        self._text: str | None = text
        self._length = len(text)
        self._astral: list[int] = []

    def offset(self, index: int) -> int:
        """The UTF-16 offset of code point ``index`` (0 <= index <= len(text))."""
        if not 0 <= index <= self._length:
            raise IndexError(f"index {index} outside 0..{self._length}")
        if self._text is not None:
            self._astral = [m.start() for m in _ASTRAL.finditer(self._text)]
            self._text = None  # indexed: the text itself is no longer needed
        return index + bisect_left(self._astral, index)

    def span(self, start: int, end: int) -> tuple[int, int]:
        return self.offset(start), self.offset(end)


def utf16_offset(text: str, index: int) -> int:
    """The UTF-16 offset of code point ``index`` in ``text``, for a single lookup (O(index)).

    Use ``Utf16Index`` for many lookups in one text.
    """
    if not 0 <= index <= len(text):
        raise IndexError(f"index {index} outside 0..{len(text)}")
    return index + len(_ASTRAL.findall(text, 0, index))


def locate(
    text: str, quote: str, hint: int | None = None, *, avoid: Collection[tuple[int, int]] = ()
) -> tuple[int, int] | None:
    """Find ``quote`` in ``text``: the ``(start, end)`` of the text it quotes, or None.

    An exact match wins; among several, the one starting nearest to ``hint`` (the first
    when there is no hint), passing over any that overlaps a span of ``avoid`` (where the
    same note was placed already). Otherwise the quote is matched tolerantly: any run of
    whitespace matches any other, curly and straight quote marks match each other, as do
    dashes, and ``...`` and ``…``. The span is always that of the text as submitted, so
    ``text[start:end]`` is exactly what a client highlights.
    """
    if not quote or not quote.strip():
        return None
    free = [s for s in _exact_starts(text, quote) if not _overlaps(s, s + len(quote), avoid)]
    exact = _nearest(free, hint)
    if exact is not None:
        return exact, exact + len(quote)
    pattern = _tolerant_pattern(quote.strip())
    spans = {
        m.start(): m.end()
        for m in pattern.finditer(text)
        if not _overlaps(m.start(), m.end(), avoid)
    }
    start = _nearest(spans, hint)
    return None if start is None else (start, spans[start])


def _overlaps(start: int, end: int, spans: Collection[tuple[int, int]]) -> bool:
    return any(start < e and s < end for s, e in spans)


def _exact_starts(text: str, quote: str) -> list[int]:
    starts = []
    index = text.find(quote)
    while index != -1:
        starts.append(index)
        index = text.find(quote, index + 1)
    return starts


def _nearest(starts: list[int] | dict[int, int], hint: int | None) -> int | None:
    if not starts:
        return None
    if hint is None:
        return min(starts)
    # Ties go to the earlier occurrence, so the answer never depends on iteration order.
    return min(starts, key=lambda start: (abs(start - hint), start))


def _tolerant_pattern(quote: str) -> re.Pattern[str]:
    parts = []
    for token in _TOLERANT_TOKEN.finditer(quote):
        kind = token.lastgroup or "other"
        parts.append(_TOLERANT_PATTERNS.get(kind) or re.escape(token.group()))
    return re.compile("".join(parts))
