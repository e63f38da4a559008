# ruff: noqa: RUF001
"""Span utilities: code point -> UTF-16 offsets, and finding a quote in the text."""

from __future__ import annotations

import random

import pytest

from amplify_stream.text.spans import Utf16Index, locate, utf16_offset


def js_offset(text: str, index: int) -> int:
    """What JavaScript's string indices say: UTF-16 code units before ``index``."""
    return len(text[:index].encode("utf-16-le")) // 2


FAMILY_EMOJI = "\U0001f469\u200d\U0001f469\u200d\U0001f467"  # one glyph, five code points
ALPHABET = ["a", "é", " ", "\n", "東", "😀", FAMILY_EMOJI, "\U0001d54f", "\u0301", "’", "\ue000"]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "plain ascii",
        "😀",
        "a😀b😀😀c",
        f"Zoë met 東京 {FAMILY_EMOJI} at \U0001d54f.",
        "\U0010ffff\U00010000",
    ],
)
def test_utf16_offsets_match_javascript(text: str) -> None:
    index = Utf16Index(text)
    for i in range(len(text) + 1):
        assert index.offset(i) == js_offset(text, i) == utf16_offset(text, i)
    assert index.span(0, len(text)) == (0, js_offset(text, len(text)))


def test_utf16_offsets_on_random_texts() -> None:
    rng = random.Random(1234)
    for _ in range(200):
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 60)))
        index = Utf16Index(text)
        positions = list(range(len(text) + 1))
        rng.shuffle(positions)  # lookups in any order
        for i in positions:
            assert index.offset(i) == js_offset(text, i)


@pytest.mark.parametrize("bad", [-1, 4])
def test_utf16_offset_rejects_indices_outside_the_text(bad: int) -> None:
    with pytest.raises(IndexError):
        Utf16Index("a😀b").offset(bad)
    with pytest.raises(IndexError):
        utf16_offset("a😀b", bad)


def test_locate_exact() -> None:
    text = "The cat sat. The cat ran."
    assert locate(text, "cat sat") == (4, 11)
    assert locate(text, "The cat") == (0, 7)  # the first, with no hint


def test_locate_nearest_to_hint() -> None:
    text = "The cat sat. The cat ran. The cat hid."
    assert locate(text, "The cat", hint=14) == (13, 20)
    assert locate(text, "The cat", hint=100) == (26, 33)
    assert locate(text, "The cat", hint=0) == (0, 7)
    # Equidistant: the earlier one, whatever order the matches come in.
    assert locate("ab_ab", "ab", hint=1) == (0, 2)


def test_locate_passes_over_the_places_given_already() -> None:
    text = "the cold sea, the cold sky, the cold sand"
    first = text.index("cold")
    second = text.index("cold", first + 1)
    third = text.rindex("cold")
    assert locate(text, "cold", avoid={(first, first + 4)}) == (second, second + 4)
    given = {(first, first + 4), (second, second + 4), (third, third + 4)}
    assert locate(text, "cold", avoid=given) is None
    sky = text.index("the cold sky")
    assert locate(text, "the  cold sky", avoid={(sky, sky + 12)}) is None
    # A quote with a space before it: its tolerant match overlaps the place given, so it
    # is the same place, not a second one.
    assert locate("He was very big.", " very big", avoid={(6, 15)}) is None


def test_locate_counts_code_points_around_astral_characters() -> None:
    text = "😀😀 Zoë said “hi” 東京"
    start, end = locate(text, "Zoë said") or (-1, -1)
    assert text[start:end] == "Zoë said"
    assert (start, end) == (3, 11)


@pytest.mark.parametrize(
    ("text", "quote", "expected"),
    [
        ("She said “hello” twice.", 'said "hello"', "said “hello”"),
        ('She said "hello" twice.', "said “hello”", 'said "hello"'),
        ("It’s late.", "It's late", "It’s late"),
        ("one   two\nthree", "one two three", "one   two\nthree"),
        ("wait — no", "wait - no", "wait — no"),
        ("wait -- no", "wait — no", "wait -- no"),
        ("and then… gone", "then... gone", "then… gone"),
        ("and then... gone", "then… gone", "then... gone"),
        ("x 😀  “y”", '😀 "y"', "😀  “y”"),
        ("  padded quote here ", "  quote\there  ", "quote here"),
    ],
)
def test_locate_tolerates_quote_marks_dashes_and_whitespace(
    text: str, quote: str, expected: str
) -> None:
    span = locate(text, quote)
    assert span is not None
    assert text[span[0] : span[1]] == expected


def test_locate_tolerant_match_nearest_to_hint() -> None:
    text = "“Go.” Later: “Go.”"
    assert locate(text, '"Go."', hint=10) == (13, 18)
    assert locate(text, '"Go."') == (0, 5)


def test_locate_prefers_exact_over_tolerant() -> None:
    text = '“hi” then "hi"'
    assert locate(text, '"hi"', hint=0) == (10, 14)


@pytest.mark.parametrize("quote", ["", "   ", "absent", "cat  sits", "CAT"])
def test_locate_returns_none_when_not_found(quote: str) -> None:
    assert locate("the cat sat", quote) is None


def test_locate_escapes_regex_metacharacters() -> None:
    text = "Price (approx.) is $5*2? [sic]"
    assert locate(text, "(approx.)  is $5*2?") == (6, 24)
    assert locate(text, "[sic]") == (25, 30)


_SWAPS = {'"': "“”", "“": '"”', "”": '"“', "'": "’‘", "’": "'", "‘": "'", "—": "-", "-": "—"}


def _normalized(text: str) -> str:
    for marks, plain in (('"“”', '"'), ("'‘’", "'"), ("-—", "-")):
        for mark in marks:
            text = text.replace(mark, plain)
    return " ".join(text.split())


def test_locate_finds_randomly_requoted_excerpts() -> None:
    """A model's quote with its marks swapped and its spacing changed still lands on an
    excerpt of the text that differs from it only in those ways."""
    rng = random.Random(99)
    words = ["Anna", "said", '"go', 'home,"', "“now”", "it’s", "don't", "—", "😀", "東京", "a"]
    for _ in range(300):
        text = "".join(rng.choice(words) + rng.choice([" ", "  ", "\n", "\t "]) for _ in range(30))
        start = rng.randrange(len(text) - 1)
        excerpt = text[start : rng.randrange(start + 1, min(len(text), start + 40) + 1)].strip()
        if not excerpt:
            continue
        quote = "".join(
            rng.choice(_SWAPS[ch]) if ch in _SWAPS and rng.random() < 0.5 else ch for ch in excerpt
        )
        quote = quote.replace(" ", rng.choice([" ", "  ", "\n"]))
        span = locate(text, quote, hint=start)
        assert span is not None, (text, quote)
        assert _normalized(text[span[0] : span[1]]) == _normalized(excerpt)
