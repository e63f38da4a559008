"""The edits of a live document and the shifting rule of its live suggestions
(docs/protocol.md section 6): examples at every edge, then properties over random texts
(emoji and CJK included) and random edit sequences, checked against a model that works
on UTF-16 code units as an editor does."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amplify_stream.text.edits import (
    Change,
    InvalidChange,
    LiveSpan,
    apply_changes,
    shift,
    shift_all,
    utf16_length,
)

TEXT = "Mara 🌊 walked. 灯台 was dark."
WAVE = TEXT.index("🌊")  # code point 5; UTF-16 units 5 and 6


def units(text: str) -> list[int]:
    data = text.encode("utf-16-le")
    return [int.from_bytes(data[i : i + 2], "little") for i in range(0, len(data), 2)]


def from_units(code_units: list[int]) -> str:
    return b"".join(u.to_bytes(2, "little") for u in code_units).decode("utf-16-le")


def edited_as_an_editor_would(text: str, changes: list[Change]) -> str:
    """The model: the same changes on UTF-16 code units."""
    code_units = units(text)
    for c in changes:
        code_units[c.start_utf16 : c.end_utf16] = units(c.text)
    return from_units(code_units)


def sliced(text: str, span: LiveSpan) -> str:
    return from_units(units(text)[span.start_utf16 : span.end_utf16])


# ---------------------------------------------------------------- examples


def test_changes_apply_each_on_what_the_one_before_left() -> None:
    changes = [Change(0, 4, "Tom"), Change(3, 3, "!"), Change(0, 0, "> ")]
    assert apply_changes("Mara walked.", changes) == "> Tom! walked."


def test_offsets_count_utf16_units() -> None:
    after_wave = WAVE + 2  # the emoji is two units
    assert apply_changes(TEXT, [Change(after_wave, after_wave + 1, "_")]) == TEXT.replace(
        "🌊 ", "🌊_"
    )
    cjk = utf16_length(TEXT[: TEXT.index("灯")])
    assert apply_changes(TEXT, [Change(cjk, cjk + 2, "lighthouse")]).endswith(
        "lighthouse was dark."
    )


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (Change(-1, 0, ""), "negative"),
        (Change(0, 999, ""), "past the end"),
        (Change(4, 2, ""), "starts after its end"),
        (Change(WAVE + 1, WAVE + 1, "x"), "splits a surrogate pair"),
        (Change(0, WAVE + 1, ""), "splits a surrogate pair"),
    ],
)
def test_a_change_that_cannot_apply_is_refused(change: Change, why: str) -> None:
    with pytest.raises(InvalidChange, match=why):
        apply_changes(TEXT, [change, Change(0, 0, "never applied")])


SPAN = LiveSpan("s", 10, 15)  # [10, 15)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (Change(0, 2, "abc"), LiveSpan("s", 11, 16)),  # before: moves by +1
        (Change(2, 10, ""), LiveSpan("s", 2, 7)),  # a deletion ending at its start: moves
        (Change(10, 10, "xy"), LiveSpan("s", 12, 17)),  # an insertion at its start: moves
        (Change(15, 15, "xy"), SPAN),  # an insertion at its end: stays
        (Change(15, 20, ""), SPAN),  # a deletion starting at its end: stays
        (Change(20, 22, "🌊"), SPAN),  # after it: stays
        (Change(12, 12, "x"), None),  # an insertion strictly inside: retracted
        (Change(11, 13, ""), None),  # inside: retracted
        (Change(8, 11, "x"), None),  # overlapping its start: retracted
        (Change(14, 18, ""), None),  # overlapping its end: retracted
        (Change(5, 25, "all new"), None),  # around it: retracted
        (Change(10, 15, "other"), None),  # exactly it: retracted
    ],
)
def test_the_shifting_rule(change: Change, expected: LiveSpan | None) -> None:
    kept, retracted = shift([SPAN], change)
    assert kept == ([expected] if expected else [])
    assert retracted == ([] if expected else ["s"])


# ---------------------------------------------------------------- properties

ALPHABET = st.sampled_from(["a", "b", " ", "\n", ".", "🌊", "灯", "é", "😀"])
texts = st.lists(ALPHABET, max_size=40).map("".join)


def boundaries(text: str) -> list[int]:
    """The UTF-16 offsets that do not split a surrogate pair."""
    found, at = [0], 0
    for char in text:
        at += 2 if ord(char) > 0xFFFF else 1
        found.append(at)
    return found


@st.composite
def edit_sequences(draw: st.DrawFn) -> tuple[str, list[Change]]:
    text = draw(texts)
    changes, current = [], text
    for _ in range(draw(st.integers(0, 6))):
        edges = boundaries(current)
        a, b = sorted((draw(st.sampled_from(edges)), draw(st.sampled_from(edges))))
        change = Change(a, b, draw(texts))
        changes.append(change)
        current = edited_as_an_editor_would(current, [change])
    return text, changes


@st.composite
def spans_of(draw: st.DrawFn, text: str) -> list[LiveSpan]:
    edges = boundaries(text)
    spans = []
    for i in range(draw(st.integers(0, 5))):
        a, b = sorted((draw(st.sampled_from(edges)), draw(st.sampled_from(edges))))
        if a < b:
            spans.append(LiveSpan(f"s{i}", a, b))
    return spans


@given(edit_sequences())
def test_the_text_is_what_an_editor_gets(sequence: tuple[str, list[Change]]) -> None:
    text, changes = sequence
    assert apply_changes(text, changes) == edited_as_an_editor_would(text, changes)


def touched(span: LiveSpan, change: Change) -> bool:
    """The section's words: the change overlaps the span, or inserts strictly inside it."""
    a, b, s, e = change.start_utf16, change.end_utf16, span.start_utf16, span.end_utf16
    return a < e and b > s if a < b else s < a < e


@given(st.data())
def test_kept_spans_slice_the_same_words_and_only_touched_ones_go(data: st.DataObject) -> None:
    text, changes = data.draw(edit_sequences())
    spans = data.draw(spans_of(text))
    quotes = {s.id: sliced(text, s) for s in spans}
    live, current = spans, text
    for change in changes:
        kept, retracted = shift(live, change)
        assert retracted == [s.id for s in live if touched(s, change)]
        live, current = kept, edited_as_an_editor_would(current, [change])
        for span in live:
            assert sliced(current, span) == quotes[span.id]
    assert shift_all(spans, changes)[0] == live
