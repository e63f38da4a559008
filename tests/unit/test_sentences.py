"""The one sentence rule: the streaming form behind pipelined narration, the whole-text
form, and the agreement of its three users (narration segments, the local analyzer,
speech pieces)."""

from __future__ import annotations

import random

import pytest

from amplify_stream.providers.local.document import Document
from amplify_stream.text.chunks import split_for_speech
from amplify_stream.text.sentences import SentenceStream, sentence_spans, split_sentences
from amplify_stream.text.spans import Utf16Index

TEXT = (
    'Mr. Smith went home. "Why?" she asked! It was 3.5 km away.\n'
    "New paragraph... ok. 🌊 Élodie waited… Then “Go.” She ran"
)


def test_sentences_and_their_offsets() -> None:
    found = split_sentences(TEXT)
    assert [s for _, s in found] == [
        "Mr. Smith went home.",
        '"Why?" she asked!',
        "It was 3.5 km away.",
        "New paragraph... ok.",
        "🌊 Élodie waited…",
        "Then “Go.”",
        "She ran",
    ]
    assert all(TEXT[start : start + len(s)] == s for start, s in found)


@pytest.mark.parametrize("seed", range(25))
def test_pieces_of_any_size_give_the_same_sentences(seed: int) -> None:
    rng = random.Random(seed)
    stream, found, i = SentenceStream(), [], 0
    while i < len(TEXT):
        size = rng.randint(1, 7)
        found += stream.feed(TEXT[i : i + size])
        i += size
    assert found + stream.finish() == split_sentences(TEXT)


def test_a_sentence_is_released_as_soon_as_the_next_one_begins() -> None:
    stream = SentenceStream()
    assert stream.feed("The tide rose.") == []
    assert stream.feed(" ") == []
    assert stream.feed("T") == [(0, "The tide rose.")]


def test_nothing_to_say_gives_no_sentence() -> None:
    assert split_sentences("...  \n\n !!") == []


# ---------------------------------------------------------------- one rule for all users

# Abbreviations, initials, a number after "No.", dialogue with closing quotes, ellipses, a
# missing capital, a hard-wrapped line inside a paragraph, emoji (astral: two UTF-16
# units each) and CJK full stops.
TRICKY = (
    "Mr. Darcy met J. R. Tolkien at No. 5 Baker St. on Monday. "
    '"Why?" she asked. "Because!" he said… Then “Go.” She ran 3.5 km, e.g. to the bay 🌊.\n\n'
    "A wrapped\nline of prose. the capital is missing here. 😀 Émile smiled...\n\n"
    "東京の夜。雨が降っていた。"
)
TRICKY_SENTENCES = [
    "Mr. Darcy met J. R. Tolkien at No. 5 Baker St. on Monday.",
    '"Why?" she asked.',
    '"Because!" he said…',
    "Then “Go.”",
    "She ran 3.5 km, e.g. to the bay 🌊.",
    "A wrapped\nline of prose.",
    "the capital is missing here.",
    "😀 Émile smiled...",
    "東京の夜。",
    "雨が降っていた。",
]


def js_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-16-le")) // 2


def test_the_rule_on_a_tricky_text() -> None:
    spans = sentence_spans(TRICKY)
    assert [TRICKY[s:e] for s, e in spans] == TRICKY_SENTENCES


@pytest.mark.parametrize("seed", range(10))
def test_narration_local_analysis_and_speech_agree_on_sentences(seed: int) -> None:
    spans = sentence_spans(TRICKY)
    # The enhancer's narration segments, the text streamed in pieces of any size.
    rng = random.Random(seed)
    stream, segments, i = SentenceStream(), [], 0
    while i < len(TRICKY):
        size = rng.randint(1, 9)
        segments += stream.feed(TRICKY[i : i + size])
        i += size
    segments += stream.finish()
    assert segments == [(s, TRICKY[s:e]) for s, e in spans]
    # The local analyzer's sentences, and its paragraphs made of them.
    document = Document(TRICKY)
    assert [(s.start, s.end) for s in document.sentences] == spans
    assert [len(p.sentences) for p in document.paragraphs] == [5, 3, 2]
    # The speech pieces: whole sentences, packed, never cut inside one that fits.
    longest = max(e - s for s, e in spans)
    for max_chars in (longest, longest + 20, 200):
        pieces = split_for_speech(TRICKY, max_chars)
        starts, ends = {s for s, _ in spans}, {e for _, e in spans}
        assert all(o in starts and o + len(p) in ends for o, p in pieces), pieces
    assert split_for_speech(TRICKY, 20)[:3] == [
        (0, "Mr. Darcy met J. R."),
        (20, "Tolkien at No. 5"),
        (37, "Baker St. on Monday."),
    ]
    # Offsets in UTF-16 (what the browser indexes) follow the emoji.
    utf16 = Utf16Index(TRICKY)
    for start, sentence in segments:
        end = start + len(sentence)
        assert utf16.span(start, end) == (js_offset(TRICKY, start), js_offset(TRICKY, end))
    assert utf16.offset(spans[-1][1]) == len(TRICKY) + 2  # two emoji before the end


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("the cat sat.  the dog ran.", ["the cat sat.", "the dog ran."]),  # missing capital
        ("Why? because I can.", ["Why?", "because I can."]),
        (
            '"Stop!" she cried. "Go?" he asked... and went.',
            ['"Stop!" she cried.', '"Go?" he asked... and went.'],
        ),
        ("Kramer vs. Kramer won. See Fig. 3 too.", ["Kramer vs. Kramer won.", "See Fig. 3 too."]),
        (
            "Bread, milk, etc. The shop shut. Milk etc. and more.",
            ["Bread, milk, etc.", "The shop shut.", "Milk etc. and more."],
        ),
        ("Visit example.com now. Pi is 3.14!", ["Visit example.com now.", "Pi is 3.14!"]),
        ("He said «Hi!» Then left.", ["He said «Hi!»", "Then left."]),
        ("Chapter One\nIt was dark\nand cold.", ["Chapter One", "It was dark", "and cold."]),
        ("Intro.\n\nA hard\nwrapped line.", ["Intro.", "A hard\nwrapped line."]),
    ],
)
def test_sentence_boundaries(text: str, sentences: list[str]) -> None:
    assert [text[s:e] for s, e in sentence_spans(text)] == sentences
    assert [s for _, s in split_sentences(text)] == sentences


def test_a_line_break_waits_until_the_text_shows_its_paragraphs() -> None:
    # Without a blank line so far, a line break may end a paragraph or wrap one.
    stream = SentenceStream()
    assert stream.feed("Title line\nIt was dark") == []
    assert stream.feed(". Then\n") == []
    assert stream.feed("\nNext") == [(0, "Title line\nIt was dark."), (24, "Then")]
    assert stream.finish() == [(30, "Next")]
    # A text that never has one: each line is a paragraph, known at the end.
    stream = SentenceStream()
    assert stream.feed("Roses are red\nViolets") == []
    assert stream.finish() == [(0, "Roses are red"), (14, "Violets")]
    # A line that ends a sentence anyway is released at once.
    assert SentenceStream().feed("It was late.\nThe") == [(0, "It was late.")]


def test_a_stream_told_the_paragraph_style_settles_line_breaks_at_once() -> None:
    """Lines without blank lines between them: told so, the stream releases each line as
    it ends, rather than holding everything after a title line until the end."""
    told = SentenceStream(blank_lines=False)
    assert told.feed("The Storm\nRain fell. ") == [(0, "The Storm")]
    untold = SentenceStream()
    assert untold.feed("The Storm\nRain fell. ") == []
    text = "The Storm\nRain fell. Wind rose.\nThe end"
    whole = SentenceStream(blank_lines=False)
    pieces = [*whole.feed(text), *whole.finish()]
    assert [s for _, s in pieces] == [text[s:e] for s, e in sentence_spans(text)]
