"""The story's structure with exact code point offsets: words, sentences, paragraphs and
quoted speech. Every analyzer and the rewrite read this one model, built once per story."""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType
from typing import NamedTuple

from amplify_stream.providers.local.lexicon import ABBREVIATIONS, TITLES

# Kana and CJK ideographs are written without spaces: each character counts as a word.
CJK_CHARS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_CHAR = re.compile(f"[{CJK_CHARS}]")
# Letters and digits, with any combining marks (decomposed accents: "Jose\u0301").
_LETTERS = rf"[^\W_{CJK_CHARS}]+(?:[\u0300-\u036f]+[^\W_{CJK_CHARS}]*)*"
WORD_RE = re.compile(rf"[{CJK_CHARS}]|{_LETTERS}(?:['’\-]{_LETTERS})*")  # noqa: RUF001 - look-alike marks are the point

# A blank line separates paragraphs; a text with no blank line uses one per line.
_BLANK_LINE = re.compile(r"\n[^\S\n]*\n\s*")
_LINE_BREAK = re.compile(r"\n\s*")
_CLOSERS = "\"'”’»」』)\\]"  # noqa: RUF001 - look-alike marks are the point
_TERMINATOR = re.compile(rf"(?P<stop>[.!?…]+)(?P<close>[{_CLOSERS}]*)|(?P<cjk>[。！？]+[」』”’]*)")  # noqa: RUF001 - look-alike marks are the point
_TRAILING_STOP = re.compile(rf"[.!?…]+[{_CLOSERS}]*$")
_SPEECH = re.compile(r'"[^"]*"?|“[^”]*”?|«[^»]*»?|「[^」]*」?')
# British style: 'Go home,' she said. An apostrophe inside ("don't") does not close it;
# the closing mark follows punctuation and ends a word.
_SINGLE_QUOTED_SPEECH = re.compile(
    r"(?<![\w'‘’])['‘](?=\w)(?:[^'‘’\n]|['’](?=\w))*?[,.!?…—–-]['’](?!\w)"  # noqa: RUF001
)
_CLOSING_MARK = MappingProxyType(
    {'"': '"', "“": "”", "«": "»", "「": "」", "'": "'", "‘": "’"}  # noqa: RUF001
)


class Word(NamedTuple):  # a story has thousands: a tuple is the cheapest immutable record
    start: int
    end: int
    text: str
    lower: str  # every heuristic compares in lower case: computed once

    @property
    def is_cjk(self) -> bool:
        """A CJK character, counted as a word though far shorter than one."""
        return len(self.text) == 1 and _CJK_CHAR.match(self.text) is not None


@dataclass(frozen=True, slots=True)
class Sentence:
    start: int
    end: int
    words: tuple[Word, ...]
    # Opens the text, or follows a plain full stop: its first letter should be a capital.
    clean_start: bool


@dataclass(frozen=True, slots=True)
class Paragraph:
    start: int
    end: int
    sentences: tuple[Sentence, ...]

    @property
    def words(self) -> tuple[Word, ...]:
        return tuple(w for s in self.sentences for w in s.words)


@dataclass(frozen=True, slots=True)
class Speech:
    """Quoted speech, marks included. Unclosed speech runs to the end of its paragraph
    (the convention for a speech that goes on into the next paragraph)."""

    start: int
    end: int
    closed: bool
    words: tuple[Word, ...]


class Document:
    def __init__(self, text: str) -> None:
        self.text = text
        self.words = tuple(
            Word(m.start(), m.end(), m.group(), m.group().lower()) for m in WORD_RE.finditer(text)
        )
        self._word_starts = [w.start for w in self.words]
        self.paragraphs = tuple(self._paragraphs())
        self.sentences = tuple(s for p in self.paragraphs for s in p.sentences)
        # Single quotes mark speech only in a story that never uses double ones: elsewhere
        # they are far likelier apostrophes.
        self.speeches = self._speeches(_SPEECH) or self._speeches(_SINGLE_QUOTED_SPEECH)
        self._speech_starts = [s.start for s in self.speeches]

    def _speeches(self, pattern: re.Pattern[str]) -> tuple[Speech, ...]:
        return tuple(
            Speech(m.start(), m.end(), _is_closed(m.group()), self.words_in(m.start(), m.end()))
            for p in self.paragraphs
            for m in pattern.finditer(self.text, p.start, p.end)
        )

    def words_in(self, start: int, end: int) -> tuple[Word, ...]:
        """The words lying wholly inside ``[start, end)``."""
        first = bisect_left(self._word_starts, start)
        last = bisect_left(self._word_starts, end)
        return tuple(w for w in self.words[first:last] if w.end <= end)

    def word_index(self, word: Word) -> int:
        return bisect_left(self._word_starts, word.start)

    def in_speech(self, index: int) -> bool:
        i = bisect_right(self._speech_starts, index) - 1
        return i >= 0 and index < self.speeches[i].end

    @cached_property
    def opening_starts(self) -> frozenset[int]:
        """Starts of the words that open a sentence or a speech (capitalized anyway)."""
        openers = [s.words[0] for s in self.sentences if s.words]
        openers += [s.words[0] for s in self.speeches if s.words]
        return frozenset(w.start for w in openers)

    @cached_property
    def narration_words(self) -> tuple[Word, ...]:
        return tuple(w for w in self.words if not self.in_speech(w.start))

    def _paragraphs(self) -> list[Paragraph]:
        text = self.text
        breaks = _BLANK_LINE if _BLANK_LINE.search(text) else _LINE_BREAK
        bounds, cursor = [], 0
        for m in breaks.finditer(text):
            bounds.append((cursor, m.start()))
            cursor = m.end()
        bounds.append((cursor, len(text)))
        paragraphs: list[Paragraph] = []
        for raw_start, raw_end in bounds:
            chunk = text[raw_start:raw_end]
            if not chunk.strip():
                continue
            start = raw_start + len(chunk) - len(chunk.lstrip())
            end = raw_end - (len(chunk) - len(chunk.rstrip()))
            clean = not paragraphs or _ends_with_full_stop(text[paragraphs[-1].start : start])
            sentences = tuple(self._sentences(start, end, clean))
            paragraphs.append(Paragraph(start, end, sentences))
        return paragraphs

    def _sentences(self, start: int, end: int, clean: bool) -> list[Sentence]:
        text, sentences, cursor = self.text, [], start
        for m in _TERMINATOR.finditer(text, start, end):
            if m.group("cjk") is None and not _is_boundary(text, m, end):
                continue
            sentences.append(Sentence(cursor, m.end(), self.words_in(cursor, m.end()), clean))
            clean = m.group("cjk") is None and not m.group("close") and _plain(m.group("stop"))
            cursor = _skip_space(text, m.end(), end)
            if cursor >= end:
                break
        if cursor < end:
            sentences.append(Sentence(cursor, end, self.words_in(cursor, end), clean))
        return sentences


def _is_boundary(text: str, stop: re.Match[str], end: int) -> bool:
    if stop.end() < end and not text[stop.end()].isspace():
        return False  # "3.5", "example.com", "?!" inside a word
    following = _skip_space(text, stop.end(), end)
    if following >= end:
        return True
    next_lower = text[following].islower()
    # '"Stop!" she said' and "I thought... maybe" go on after the mark.
    if next_lower and (stop.group("close") or not _plain(stop.group("stop"))):
        return False
    if stop.group("stop") == "." and not stop.group("close"):
        before = _word_before(text, stop.start())
        if before.lower() in TITLES or (len(before) == 1 and before.isupper()):
            return False  # "Mr. Darcy", "J. R. Tolkien"
        if next_lower and (before.lower() in ABBREVIATIONS or "." in before):
            return False  # "e.g. this"
    return True


def _plain(stop: str) -> bool:
    """A plain full stop, question or exclamation mark; not an ellipsis."""
    return "…" not in stop and ".." not in stop


def _ends_with_full_stop(before: str) -> bool:
    match = _TRAILING_STOP.search(before.rstrip())
    return match is not None and _plain(match.group())


def _is_closed(speech: str) -> bool:
    return len(speech) > 1 and speech[-1] == _CLOSING_MARK[speech[0]]


def _word_before(text: str, index: int) -> str:
    start = index
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "."):
        start -= 1
    return text[start:index]


def _skip_space(text: str, index: int, end: int) -> int:
    while index < end and text[index].isspace():
        index += 1
    return index
