"""A live document's state as its owner folds the edit log (docs/protocol.md section 6):
the version rule, edits that cannot apply, which paragraphs a pass reads again, and the
live set after a pass, and a pass that adds its suggestions as it finds them (``OpenPass``);
then properties over random edits and passes: the live set always equals what a fresh
reading of the whole text finds, at the right spans, and what a client was told, even
when passes are cut short."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amplify_stream.documents.local_pass import local_pass
from amplify_stream.documents.state import (
    Applied,
    Conflict,
    DocumentState,
    Finding,
    PassResult,
    StalePass,
)
from amplify_stream.providers.local.paragraphs import paragraph_cache_info
from amplify_stream.text.edits import Change, InvalidChange, utf16_length


def find(paragraph: str) -> list[Finding]:
    """A stand-in provider: every "very" is an intensifier (deterministic per text)."""
    return [
        Finding("setting", m.start(), m.end(), "An intensifier.", "")
        for m in re.finditer(r"very", paragraph)
    ]


def analyse(doc: DocumentState) -> None:
    doc.settle({i: find(doc.paragraphs[i]) for i in doc.stale()})


def at(doc: DocumentState, needle: str, nth: int = 0) -> int:
    """The UTF-16 offset of the nth occurrence of ``needle``."""
    index = -1
    for _ in range(nth + 1):
        index = doc.text.index(needle, index + 1)
    return utf16_length(doc.text[:index])


def spans(doc: DocumentState) -> list[tuple[str, int, int]]:
    return sorted((s.quote, s.start_utf16, s.end_utf16) for s in doc.live.values())


def check_slices(doc: DocumentState) -> None:
    units = doc.text.encode("utf-16-le")
    for s in doc.live.values():
        assert units[2 * s.start_utf16 : 2 * s.end_utf16].decode("utf-16-le") == s.quote


def test_an_edit_must_carry_the_next_version() -> None:
    doc = DocumentState("d1", "u1", "one")
    assert doc.edit(2, [Change(0, 0, "x")]) == Conflict(0)
    assert doc.edit(1, [Change(0, 0, "x")]) == Applied(1, [])
    # A second edit made on version 0 too (another socket): it conflicts, nothing applied.
    assert doc.edit(1, [Change(0, 3, "two")]) == Conflict(1)
    assert (doc.text, doc.version) == ("xone", 1)


def test_an_edit_that_cannot_apply_changes_nothing() -> None:
    doc = DocumentState("d1", "u1", "very 🌊 very")
    analyse(doc)
    before = (doc.text, doc.version, dict(doc.live), list(doc.current))
    with pytest.raises(InvalidChange):
        doc.edit(1, [Change(0, 4, "quite"), Change(7, 7, "x")])  # inside the emoji
    assert (doc.text, doc.version, doc.live, doc.current) == before


def test_a_one_character_edit_reads_one_paragraph_of_fifty() -> None:
    doc = DocumentState("d1", "u1", "\n".join(f"Line {i} is very calm." for i in range(50)))
    analyse(doc)
    assert doc.stale() == [] and len(doc.live) == 50
    doc.edit(1, [Change(at(doc, "calm", 17), at(doc, "calm", 17) + 1, "C")])
    assert doc.stale() == [17]


def test_splitting_and_joining_paragraphs() -> None:
    doc = DocumentState("d1", "u1", "a very b\nc\nd")
    analyse(doc)
    doc.edit(1, [Change(1, 1, "\n")])  # "a\n very b": two paragraphs, both to read
    assert doc.stale() == [0, 1]
    analyse(doc)
    doc.edit(2, [Change(at(doc, "\nc"), at(doc, "\nc") + 1, " ")])  # joins "very b" and "c"
    assert doc.stale() == [1]


def test_a_pass_keeps_what_it_finds_again_and_retracts_what_it_does_not() -> None:
    doc = DocumentState("d1", "u1", "very cold, very dark\nvery far")
    analyse(doc)
    first = next(s.id for s in doc.live.values() if s.start_utf16 == 0)
    far = next(s.id for s in doc.live.values() if s.start_utf16 == at(doc, "very far"))
    # Typing in the first paragraph makes it stale; its other findings keep their ids.
    doc.edit(1, [Change(at(doc, "dark"), at(doc, "dark"), "very ")])
    assert doc.stale() == [0]
    result = doc.settle({0: find(doc.paragraphs[0])})
    assert [s.quote for s in result.added] == ["very"] and result.retracted == []
    assert doc.live[first].start_utf16 == 0
    # Deleting a marked word retracts its suggestion at once, by the shifting rule.
    applied = doc.edit(2, [Change(at(doc, "very far"), at(doc, "very far") + 5, "")])
    assert applied == Applied(2, [far])
    # Changing a marked word retracts it at once too: "very" made "vary".
    assert doc.edit(3, [Change(1, 2, "a")]) == Applied(3, [first])
    check_slices(doc)


def test_a_pass_retracts_what_the_provider_no_longer_finds() -> None:
    def unless_calm(paragraph: str) -> list[Finding]:
        return [] if "calm" in paragraph else find(paragraph)

    doc = DocumentState("d1", "u1", "very cold and dark")
    doc.settle({0: unless_calm(doc.paragraphs[0])})
    (marked,) = doc.live
    doc.edit(1, [Change(at(doc, "dark"), at(doc, "dark") + 4, "calm")])  # not on the mark
    assert marked in doc.live
    result = doc.settle({i: unless_calm(doc.paragraphs[i]) for i in doc.stale()})
    assert result.retracted == [marked] and not doc.live


# ---------------------------------------------------------------- a pass found by found


def test_a_streamed_pass_adds_each_find_at_once_and_retracts_at_its_end() -> None:
    doc = DocumentState("d1", "u1", "very cold, very dark\nvery far")
    analyse(doc)
    old = {s.start_utf16: s.id for s in doc.live.values()}
    far = old[at(doc, "very far")]
    doc.edit(1, [Change(at(doc, "dark"), at(doc, "dark"), "calm ")])  # "very calm dark"
    open_pass = doc.begin_pass()
    # This provider finds the second "very" again, not the first, and something new.
    kept = open_pass.found(0, Finding("setting", 11, 15, "An intensifier.", ""))
    assert kept is None and old[11] in doc.live
    new = open_pass.found(0, Finding("plot", 0, 9, "Cold open.", None))
    assert new is not None and doc.live[new.id] == new and new.quote == "very cold"
    assert open_pass.found(0, Finding("plot", 0, 9, "Cold open.", None)) is None  # no twin
    assert old[0] in doc.live and doc.stale() == [0]  # nothing retracted before the end
    result = open_pass.finish([0])
    assert result == PassResult(1, [], [old[0]], 1)
    assert doc.stale() == [] and doc.analyzed_version == 1
    assert sorted(doc.live) == sorted([old[11], far, new.id])
    check_slices(doc)


def test_a_pass_cut_short_leaves_the_document_consistent_and_the_next_reconciles() -> None:
    def unless_calm(paragraph: str) -> list[Finding]:
        return [f for f in find(paragraph) if not paragraph[f.end :].startswith(" calm")]

    doc = DocumentState("d1", "u1", "very cold, very dark\nvery far")
    analyse(doc)
    first, second, far = (s.id for s in sorted(doc.live.values(), key=lambda s: s.start_utf16))
    doc.edit(1, [Change(at(doc, "dark"), at(doc, "dark"), "very ")])  # "very very dark"
    cut = doc.begin_pass()
    told = [live for f in find(doc.paragraphs[0]) if (live := cut.found(0, f)) is not None]
    assert [s.quote for s in told] == ["very"] and told[0].start_utf16 == at(doc, "very dark")
    # An edit supersedes the pass before it finishes: what it told stays live and in
    # place, nothing was retracted, the paragraph is still to read.
    doc.edit(2, [Change(at(doc, "cold"), at(doc, "cold") + 4, "calm")])
    assert set(doc.live) == {first, second, far, told[0].id}
    assert doc.stale() == [0]
    check_slices(doc)
    with pytest.raises(StalePass):
        cut.found(0, Finding("plot", 0, 4, "m"))
    with pytest.raises(StalePass):
        cut.finish([0])
    # The next pass finds the told one again (same id, not told twice) and retracts the
    # first "very", which this provider no longer finds before "calm".
    after = doc.begin_pass()
    again = [live for f in unless_calm(doc.paragraphs[0]) if (live := after.found(0, f))]
    result = after.finish(doc.stale())
    assert again == [] and result.retracted == [first] and result.added == []
    assert set(doc.live) == {second, far, told[0].id}
    fresh = DocumentState("d2", "u1", doc.text)
    fresh.settle({i: unless_calm(p) for i, p in enumerate(fresh.paragraphs)})
    assert spans(doc) == spans(fresh)


def test_settle_is_a_pass_with_every_find_before_its_end() -> None:
    text = "very cold, very dark\nvery far\n\nvery"
    settled, streamed = DocumentState("d1", "u1", text), DocumentState("d1", "u1", text)
    across = [(1, Finding("character", 5, 8, "Across.", None))]
    by_settle = settled.settle({i: find(p) for i, p in enumerate(settled.paragraphs)}, across)
    open_pass = streamed.begin_pass()
    told = [
        live
        for i, p in enumerate(streamed.paragraphs)
        for f in find(p)
        if (live := open_pass.found(i, f)) is not None
    ]
    by_stream = open_pass.finish(range(4), across)
    assert by_settle.added == told + by_stream.added
    assert (by_settle.retracted, by_settle.reanalyzed) == (by_stream.retracted, 4)
    assert settled.live == streamed.live


# ---------------------------------------------------------------- the property

WORDS = st.sampled_from(["very", "calm", " ", "\n", "🌊", "灯", "ve", "ry"])
texts = st.lists(WORDS, max_size=30).map("".join)


@st.composite
def edit_steps(draw: st.DrawFn) -> tuple[str, list[tuple[Sequence[Change], bool]]]:
    text = draw(texts)
    steps, current = [], text
    for _ in range(draw(st.integers(1, 8))):
        changes = []
        for _ in range(draw(st.integers(1, 3))):
            edges = [0]
            for char in current:
                edges.append(edges[-1] + (2 if ord(char) > 0xFFFF else 1))
            a, b = sorted((draw(st.sampled_from(edges)), draw(st.sampled_from(edges))))
            change = Change(a, b, draw(texts))
            changes.append(change)
            units = current.encode("utf-16-le")
            current = (units[: 2 * a] + change.text.encode("utf-16-le") + units[2 * b :]).decode(
                "utf-16-le"
            )
        steps.append((changes, draw(st.booleans())))  # then a pass, or more typing first
    return text, steps


@settings(max_examples=200)
@given(edit_steps())
def test_the_live_set_is_always_what_a_fresh_reading_finds(
    sequence: tuple[str, list[tuple[Sequence[Change], bool]]],
) -> None:
    text, steps = sequence
    doc = DocumentState("d1", "u1", text)
    analyse(doc)
    for version, (changes, then_analyse) in enumerate(steps, start=1):
        live_before = set(doc.live)
        applied = doc.edit(version, changes)
        assert isinstance(applied, Applied)
        assert set(applied.retracted) <= live_before
        check_slices(doc)  # between passes too: spans shifted, never stale
        if then_analyse:
            analyse(doc)
    analyse(doc)
    fresh = DocumentState("d2", "u1", doc.text)
    analyse(fresh)
    assert spans(doc) == spans(fresh)


# ---------------------------------------------------------------- with the local analyzer


def test_a_local_pass_reads_the_edited_paragraph_only() -> None:
    lines = [f"Scene {i}: Mara was very angry at the harbour wall." for i in range(50)]
    doc = DocumentState("d1", "u1", "\n".join(lines))
    first = local_pass(doc)
    assert first.result.reanalyzed == 50 and first.result.added
    assert [i.focus for i in first.insights] == list(doc.focus)
    check_slices(doc)
    misses = paragraph_cache_info().misses
    at_wall = at(doc, "wall", 20)
    doc.edit(1, [Change(at_wall, at_wall + 4, "pier")])
    second = local_pass(doc)
    assert second.result.reanalyzed == 1
    assert paragraph_cache_info().misses == misses + 1  # only the new line was read
    check_slices(doc)
    # Undo: the old line again, read from the cache, not analyzed again.
    doc.edit(2, [Change(at_wall, at_wall + 4, "wall")])
    local_pass(doc)
    assert paragraph_cache_info().misses == misses + 1
    fresh = DocumentState("d2", "u1", doc.text)
    local_pass(fresh)
    assert spans(doc) == spans(fresh)


def test_look_alike_names_across_paragraphs_come_and_go_with_either() -> None:
    doc = DocumentState("d1", "u1", "Mara said she would walk.\nTom said he would wait.")
    local_pass(doc)
    assert not [s for s in doc.live.values() if "looks like" in s.message]
    at_tom = at(doc, "Tom")
    doc.edit(1, [Change(at_tom, at_tom + 3, "Mira")])
    local_pass(doc)
    alike = [s for s in doc.live.values() if "looks like" in s.message]
    assert [s.quote for s in alike] == ["Mira"], [s.message for s in doc.live.values()]
    check_slices(doc)
    at_mira = at(doc, "Mira")
    doc.edit(2, [Change(at_mira, at_mira + 4, "Tom")])
    local_pass(doc)
    assert not [s for s in doc.live.values() if "looks like" in s.message]


@settings(max_examples=200)
@given(edit_steps(), st.data())
def test_passes_cut_short_keep_the_client_and_the_live_set_agreed(
    sequence: tuple[str, list[tuple[Sequence[Change], bool]]], data: st.DataObject
) -> None:
    """Each step: an edit, then a pass that is cut short (some finds, then the next edit)
    or not. What a client holds (told, minus retracted) is the live set at every step,
    and a last whole pass gives what a fresh reading finds."""
    text, steps = sequence
    doc = DocumentState("d1", "u1", text)
    client: set[str] = set()

    def stream_pass(cut_short: bool) -> None:
        open_pass = doc.begin_pass()
        found = [(i, f) for i in doc.stale() for f in find(doc.paragraphs[i])]
        if cut_short:
            found = found[: data.draw(st.integers(0, len(found)))]
        for index, f in found:
            if (live := open_pass.found(index, f)) is not None:
                assert live.id not in client
                client.add(live.id)
        if not cut_short:
            result = open_pass.finish(doc.stale())
            client.difference_update(result.retracted)
            client.update(s.id for s in result.added)
        assert client == set(doc.live)
        check_slices(doc)

    stream_pass(cut_short=False)
    for version, (changes, whole) in enumerate(steps, start=1):
        applied = doc.edit(version, changes)
        assert isinstance(applied, Applied)
        client.difference_update(applied.retracted)
        assert client == set(doc.live)
        stream_pass(cut_short=not whole)
    stream_pass(cut_short=False)
    fresh = DocumentState("d2", "u1", doc.text)
    analyse(fresh)
    assert spans(doc) == spans(fresh)


def test_a_hard_wrapped_paragraph_is_read_whole() -> None:
    # Blank lines separate the paragraphs, so a single line break is a wrap: the
    # sentence over it is one sentence, and one suggestion spans the break.
    tangled = (
        "The man who had come from the town that the river had flooded when the dam\n"
        "that the company which his father had worked for had built broke went to the inn\n"
        "where the woman who had once known him was waiting because nobody had told him."
    )
    text = f"At dawn the harbour was grey.\n\n{tangled}\n\nMara waited."
    doc = DocumentState("d1", "u1", text)
    local_pass(doc)
    check_slices(doc)
    [long] = [s for s in doc.live.values() if s.rule == "plot.long_sentence"]
    assert long.quote == tangled and "\n" in long.quote
    # An edit elsewhere keeps it (the same id); an edit inside it reads it again.
    doc.edit(1, [Change(len(doc.text), len(doc.text), " She left.")])
    local_pass(doc)
    assert long.id in doc.live
    at_dam = at(doc, "dam", 0)
    doc.edit(2, [Change(at_dam, at_dam + 3, "weir")])
    local_pass(doc)
    check_slices(doc)
    [again] = [s for s in doc.live.values() if s.rule == "plot.long_sentence"]
    assert again.id != long.id and again.quote == tangled.replace("dam", "weir")


def test_a_wrapped_paragraph_is_one_for_the_document_level_rules_too() -> None:
    # A line that opens a wrapped speech is not a line standing alone; a place on the
    # opening paragraph's second line is the opening's place.
    text = (
        '"Sit," said Ann.\n\n"Thanks," said Bea.\n\n"Tea?" Cy asked.\n\n"Yes," he said.'
        '\n\n"Please, I would\nlove some," said Ann.\n'
    )
    doc = DocumentState("d1", "u1", text)
    local_pass(doc)
    assert not [s for s in doc.live.values() if s.rule == "dialogue.unattributed"]
    opening = "He thought about it for a long while in\nParis, in the rain.\n\n"
    doc = DocumentState("d2", "u1", opening + "He decided that nothing could be done. " * 12)
    local_pass(doc)
    assert not [s for s in doc.live.values() if s.rule == "setting.opening"]


def test_when_the_blank_lines_go_every_line_is_read_again() -> None:
    doc = DocumentState("d1", "u1", 'Intro.\n\n"Go,"\nshe said angrily.')
    local_pass(doc)
    assert [s.quote for s in doc.live.values()] == ["said angrily"]
    doc.edit(1, [Change(6, 7, "")])  # the blank line goes: each line is a paragraph
    local_pass(doc)
    fresh = DocumentState("d2", "u1", doc.text)
    local_pass(fresh)
    assert spans(doc) == spans(fresh)
    check_slices(doc)
