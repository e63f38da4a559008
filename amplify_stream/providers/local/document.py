"""The story's structure with exact code point offsets: words, sentences, paragraphs and
quoted speech. Every analyzer and the rewrite read this one model, built once per story.
Paragraphs and sentences follow ``amplify_stream.text`` (the narration's rule too)."""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType
from typing import NamedTuple

from amplify_stream.text.paragraphs import paragraph_spans
from amplify_stream.text.sentences import CLOSERS, is_plain_stop, sentence_spans

# Kana and CJK ideographs are written without spaces: each character counts as a word.
CJK_CHARS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_CHAR = re.compile(f"[{CJK_CHARS}]")
# Letters and digits, with any combining marks (decomposed accents: "Jose\u0301").
_LETTERS = rf"[^\W_{CJK_CHARS}]+(?:[\u0300-\u036f]+[^\W_{CJK_CHARS}]*)*"
WORD_RE = re.compile(rf"[{CJK_CHARS}]|{_LETTERS}(?:['’\-]{_LETTERS})*")  # noqa: RUF001 - look-alike marks are the point

_TRAILING_STOP = re.compile(rf"[.!?…]+[{CLOSERS}]*$")
_PLAIN_END = re.compile(r"[.!?…]+$")  # a stop with no closing quote or bracket after it
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
    def __init__(self, text: str, *, wrapped: bool = False) -> None:
        """``wrapped``: ``text`` is one paragraph written across lines (hard-wrapped)."""
        self.text = text
        self._wrapped = wrapped
        self.words = tuple(
            Word(m.start(), m.end(), m.group(), m.group().lower()) for m in WORD_RE.finditer(text)
        )
        self._word_starts = [w.start for w in self.words]
        self.paragraphs = tuple(self._paragraphs())
        self.sentences = tuple(s for p in self.paragraphs for s in p.sentences)
        self._sentence_starts = [s.start for s in self.sentences]
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

    def sentence_index(self, at: int) -> int:
        """The index of the sentence holding offset ``at`` (the one before it, between
        two sentences)."""
        return max(0, bisect_right(self._sentence_starts, at) - 1)

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
        # Sentences lie inside paragraphs, in order.
        sentences = iter(sentence_spans(text, wrapped=self._wrapped))
        paragraphs: list[Paragraph] = []
        for start, end in paragraph_spans(text, wrapped=self._wrapped):
            clean = not paragraphs or _ends_with_full_stop(text[paragraphs[-1].start : start])
            members: list[Sentence] = []
            while not members or members[-1].end < end:
                s_start, s_end = next(sentences)
                members.append(Sentence(s_start, s_end, self.words_in(s_start, s_end), clean))
                clean = _ends_plainly(text[s_start:s_end])
            paragraphs.append(Paragraph(start, end, tuple(members)))
        return paragraphs


def _ends_plainly(sentence: str) -> bool:
    """Ends with a plain full stop (no closing quote, not CJK): a capital should follow."""
    match = _PLAIN_END.search(sentence)
    return match is not None and is_plain_stop(match.group())


def _ends_with_full_stop(before: str) -> bool:
    match = _TRAILING_STOP.search(before.rstrip())
    return match is not None and is_plain_stop(match.group())


def _is_closed(speech: str) -> bool:
    return len(speech) > 1 and speech[-1] == _CLOSING_MARK[speech[0]]
