"""The streaming sentence splitter behind pipelined narration."""

from __future__ import annotations

import random

import pytest

from amplify_stream.text.sentences import SentenceStream, split_sentences

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
