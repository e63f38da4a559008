"""The one rule of sentence boundaries, for a whole text (``sentence_spans``) and for a text
that arrives in pieces (``SentenceStream``, which gives exactly the same sentences, each as
soon as what follows it settles where it ends).

A sentence ends:
- after ``. ! ?`` or ``…`` (and any closing quotes or brackets) followed by whitespace,
  unless what comes next shows that it goes on:
  - a lower-case word after closing quotes or an ellipsis: '"Why?" she asked',
    "I thought... maybe";
  - anything after a title, an initial or a word that introduces what follows:
    "Mr. Darcy", "J. R. Tolkien", "Kramer vs. Kramer", "e.g. Tolkien";
  - a lower-case word or a number after an abbreviation or a dotted word: "etc. and",
    "No. 5", "U.S. army" (but "etc. The" ends one).
  A plain full stop before a lower-case word does end one: "it was late. the dog barked"
  lacks a capital, it is not one sentence;
- right after a CJK full stop, question or exclamation mark, which needs no space;
- at a paragraph break (``paragraphs``): a blank line, or any line break in a text
  without blank lines.
Marks inside a word ("3.5", "example.com", "?!x") never end one.
"""

from __future__ import annotations

import re

from amplify_stream.text.paragraphs import has_blank_line


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Never the last word of a sentence: a title, or a word introducing what follows.
NEVER_FINAL = _words("mr mrs ms dr st prof sr jr capt gen col lt sgt rev mt fr vs e.g i.e cf viz")
# May end a sentence, but not before a lower-case word or a number ("No. 5", "etc. and").
ABBREVIATIONS = _words("etc approx al a.m p.m no fig vol ch pp ca")

CLOSERS = "\"'”’»」』)\\]"  # noqa: RUF001 - look-alike marks are the point
_MARK = re.compile(
    rf"(?P<stop>[.!?…]+)(?P<close>[{CLOSERS}]*)"
    r"|(?P<cjk>[。！？]+[」』）”’]*)"  # noqa: RUF001
    r"|(?P<newline>\n)"
)


def sentence_spans(text: str, *, wrapped: bool = False) -> list[tuple[int, int]]:
    """The ``(start, end)`` of every sentence of ``text``, without the whitespace around it.
    Sentences lie inside paragraphs and cover every non-space character. ``wrapped`` as
    ``paragraph_spans`` takes it."""
    return _scan(text, blank_lines=wrapped or has_blank_line(text), final=True)


def split_sentences(text: str) -> list[tuple[int, str]]:
    """The sentences of a whole text to narrate: ``(offset, sentence)``."""
    stream = SentenceStream()
    return stream.feed(text) + stream.finish()


class SentenceStream:
    """``feed`` pieces of text; get back the sentences completed so far as
    ``(offset in the whole text, sentence)``. ``finish`` returns what is left. Sentences
    with nothing to say (space or punctuation alone) are left out."""

    def __init__(self, blank_lines: bool | None = None) -> None:
        self._buffer = ""  # the text from the start of the sentence not yet complete
        self._buffer_start = 0
        self._blank_lines = False  # a blank line so far: single line breaks are wraps
        # Whether the whole text has blank lines, when the caller knows it up front (a
        # rewrite keeps its source's paragraphs): a single line break is then settled at
        # once, instead of holding every sentence after it until a blank line or the end.
        self._known = blank_lines

    def feed(self, piece: str) -> list[tuple[int, str]]:
        self._buffer += piece
        self._blank_lines = self._blank_lines or has_blank_line(self._buffer)
        if self._known is not None:
            return self._take(blank_lines=self._known or self._blank_lines, final=False)
        # Before any blank line, whether a single line break ends a sentence is not known.
        return self._take(blank_lines=True if self._blank_lines else None, final=False)

    def finish(self) -> list[tuple[int, str]]:
        blank_lines = self._blank_lines or bool(self._known)
        return self._take(blank_lines=blank_lines, final=True)

    def _take(self, *, blank_lines: bool | None, final: bool) -> list[tuple[int, str]]:
        buffer, base = self._buffer, self._buffer_start
        spans = _scan(buffer, blank_lines=blank_lines, final=final)
        # Keep the space after the last sentence: a blank line in it decides line breaks.
        resume = len(buffer) if final else spans[-1][1] if spans else 0
        self._buffer, self._buffer_start = buffer[resume:], base + resume
        return [(base + s, buffer[s:e]) for s, e in spans if _has_words(buffer, s, e)]


def _scan(text: str, *, blank_lines: bool | None, final: bool) -> list[tuple[int, int]]:
    """The sentences of ``text`` whose end is settled.

    ``final``: nothing follows ``text``. ``blank_lines``: whether the whole text has a
    blank line (None: not known yet).
    """
    spans: list[tuple[int, int]] = []
    cursor = _skip_space(text, 0)
    for mark in _MARK.finditer(text, cursor):
        if mark.start() < cursor:
            continue  # inside the space after a sentence that ended
        ends = _ends_sentence(text, mark, blank_lines, final)
        if ends is None:
            return spans  # wait for more text
        if ends:
            end = mark.end() if mark.group("newline") is None else _rstrip(text, mark.start())
            spans.append((cursor, end))
            cursor = _skip_space(text, mark.end())
    if final and cursor < len(text):
        spans.append((cursor, _rstrip(text, len(text))))
    return spans


def _ends_sentence(
    text: str, mark: re.Match[str], blank_lines: bool | None, final: bool
) -> bool | None:
    """Whether ``mark`` ends a sentence; None when the text so far cannot tell."""
    if mark.group("newline") is not None:
        return _line_break_ends(text, mark.start(), blank_lines, final)
    if mark.end() == len(text):
        return True if final else None  # more marks or closers may follow
    if mark.group("cjk") is not None:
        return True
    if not text[mark.end()].isspace():
        return False  # "3.5", "example.com"
    following = _skip_space(text, mark.end())
    if following == len(text):
        return True if final else None
    return _ends_before(text, mark, text[following])


def _ends_before(text: str, mark: re.Match[str], following: str) -> bool:
    """Whether the marks end a sentence, seeing the first character after the space."""
    stop, closed = mark.group("stop"), bool(mark.group("close"))
    if following.islower() and (closed or not is_plain_stop(stop)):
        return False  # '"Stop!" she said', "I thought... maybe"
    if stop == "." and not closed:
        before = _word_before(text, mark.start())
        if before.lower() in NEVER_FINAL or (len(before) == 1 and before.isupper()):
            return False  # "Mr. Darcy", "J. R. Tolkien", "e.g. Tolkien"
        if (following.islower() or following.isdigit()) and (
            before.lower() in ABBREVIATIONS or "." in before
        ):
            return False  # "etc. and", "No. 5", "U.S. army"
    return True


def _line_break_ends(text: str, at: int, blank_lines: bool | None, final: bool) -> bool | None:
    after = _skip_space(text, at + 1)
    if "\n" in text[at + 1 : after]:
        return True  # a blank line: a paragraph break in any text
    if after == len(text):
        return True if final else None  # the end, or a blank line still coming
    return None if blank_lines is None else not blank_lines


def is_plain_stop(stop: str) -> bool:
    """A plain full stop, question or exclamation mark; not an ellipsis."""
    return "…" not in stop and ".." not in stop


def _word_before(text: str, index: int) -> str:
    start = index
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "."):
        start -= 1
    return text[start:index]


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index].isspace():
        index += 1
    return index


def _rstrip(text: str, end: int) -> int:
    while end > 0 and text[end - 1].isspace():
        end -= 1
    return end


def _has_words(text: str, start: int, end: int) -> bool:
    return any(ch.isalnum() for ch in text[start:end])
