"""The ``local`` analysis of a live document a paragraph (a line) at a time: the same
suggestions and insights as the story analysis of the same text, and document-level
findings from the paragraphs' facts alone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from amplify_stream.events import ALL_FOCUS, Focus
from amplify_stream.providers.base import SuggestionFound
from amplify_stream.providers.local import analyze, paragraphs
from amplify_stream.providers.local.paragraphs import (
    ParagraphFacts,
    analyze_paragraph,
    cached_paragraph,
    document_findings,
    paragraph_cache_info,
)
from amplify_stream.providers.local.rules import shown

# One paragraph a line, with something for every focus, a look-alike name two lines
# apart, a word repeated across a line break and an opening with no place or time. No
# blank line: a story with one reads single line breaks as wraps inside a paragraph.
LINES = [
    "The letter was taken by Marta, who felt very angry about the whole affair.",
    '"Go home," she hissed softly, "before the guards return."',
    "Later Martha found the letter, and she noticed that the stove was really quite cold.",
    "He walked and walked and then he walked some more, quiet and slow and patient.",
    "It was clear that nothing about it made any sense, and it was clear that nobody who "
    "knew anything about it would ever say so, whatever they thought and whatever anyone "
    "else believed about it.",
    '"Why?" Tomas asked her quietly.',
]
TEXT = "\n".join(LINES)


def starts(lines: Sequence[str]) -> list[int]:
    offsets, at = [], 0
    for line in lines:
        offsets.append(at)
        at += len(line) + 1
    return offsets


def shifted(suggestion: SuggestionFound, by: int) -> SuggestionFound:
    return replace(suggestion, start=(suggestion.start or 0) + by)


def facts_of(lines: Sequence[str], focus: Sequence[Focus] = ALL_FOCUS) -> list[ParagraphFacts]:
    return [analyze_paragraph(line, focus) for line in lines]


def test_each_paragraph_gives_the_story_suggestions_of_its_line() -> None:
    story = analyze(TEXT, ALL_FOCUS, rewrite=False)
    facts = facts_of(LINES)
    findings = document_findings(facts, ALL_FOCUS)
    # The facts keep what rules off by default find (a writer may turn them on); what
    # the writer is shown is the story's.
    document_level = {
        shifted(f.suggestion, starts(LINES)[f.paragraph])
        for f in findings.suggestions
        if shown(f.suggestion.rule)
    }
    per_paragraph = [
        shifted(s, offset)
        for p, offset in zip(facts, starts(LINES), strict=True)
        for s in p.suggestions
        if shown(s.rule)
    ]
    assert per_paragraph == [s for s in story.suggestions if s not in document_level]
    assert sorted(document_level, key=lambda s: s.start or 0) == sorted(
        (s for s in story.suggestions if s in document_level), key=lambda s: s.start or 0
    )
    for s in per_paragraph:
        assert TEXT[s.start or 0 :].startswith(s.quote)
    # every focus has its say, in the paragraphs or across them
    assert {s.focus for s in [*per_paragraph, *document_level]} == set(ALL_FOCUS)


def test_document_findings_span_paragraphs_and_insights_match_the_story() -> None:
    findings = document_findings(facts_of(LINES), ALL_FOCUS)
    by_quote = {(f.paragraph, f.suggestion.quote): f.suggestion for f in findings.suggestions}
    lookalike = by_quote[(2, "Martha")]
    assert lookalike.focus == "character" and "'Marta'" in lookalike.message
    assert LINES[2][lookalike.start or 0 :].startswith("Martha")
    opening = by_quote[(0, LINES[0])]
    assert opening.focus == "setting" and opening.start == 0
    assert findings.insights == analyze(TEXT, ALL_FOCUS, rewrite=False).insights


def test_a_look_alike_across_paragraphs_is_found_from_the_facts() -> None:
    lines = ["Anna waited by the gate and Anna said nothing.", "Then Anya came home late."]
    findings = document_findings(facts_of(lines, ["character"]), ["character"])
    [found] = findings.suggestions
    assert found.paragraph == 1 and found.suggestion.quote == "Anya"
    assert lines[1][found.suggestion.start or 0 :].startswith("Anya")
    # each line alone has no look-alike to suggest
    assert all(not p.suggestions for p in facts_of(lines, ["character"]))


def test_a_repeat_reaches_back_only_within_its_window() -> None:
    near = ["She counted the crimson boxes.", "The boxes in crimson paper were gone."]
    assert [
        f.suggestion.quote for f in document_findings(facts_of(near), ["plot"]).suggestions
    ] == ["crimson"]
    far = [
        "She counted the crimson boxes.",
        " ".join(["and then she went on"] * 6),
        "The boxes in crimson paper were gone.",
    ]
    assert not document_findings(facts_of(far), ["plot"]).suggestions


def test_a_changed_paragraph_is_read_once_and_the_document_never_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines = [f"{LINES[i % len(LINES)]} ({i})" for i in range(50)]
    facts = facts_of(lines)
    reads: list[str] = []
    original = paragraphs.Document

    def counting(text: str, *, wrapped: bool = False) -> paragraphs.Document:
        reads.append(text)
        return original(text, wrapped=wrapped)

    monkeypatch.setattr(paragraphs, "Document", counting)
    lines[17] = lines[17].replace("letter", "parcel")
    facts[17] = analyze_paragraph(lines[17], ALL_FOCUS)
    assert reads == [lines[17]]
    findings = document_findings(facts, ALL_FOCUS)
    assert reads == [lines[17]]
    assert len(findings.insights) == 4


def test_deterministic_hashable_and_cacheable() -> None:
    first, again = analyze_paragraph(LINES[2], ALL_FOCUS), analyze_paragraph(LINES[2], ALL_FOCUS)
    assert first == again and hash(first) == hash(again)
    assert analyze_paragraph(LINES[2], ["plot", "plot"]).focus == ("plot",)
    before = paragraph_cache_info().hits
    assert cached_paragraph(LINES[2], ALL_FOCUS) == cached_paragraph(LINES[2], ALL_FOCUS) == first
    assert paragraph_cache_info().hits == before + 1


def test_edges_empty_documents_lines_and_focuses() -> None:
    # Lines given together are one paragraph hard-wrapped: a sentence over the break is one.
    wrapped = analyze_paragraph("one two three four\nfive six.", ALL_FOCUS)
    assert wrapped.plot is not None and wrapped.plot.sentence_lengths == (6,)
    empty = document_findings([], ALL_FOCUS)
    assert not empty.suggestions
    assert empty.insights == analyze("", ALL_FOCUS, rewrite=False).insights
    with pytest.raises(ValueError, match="analyzed for the focuses"):
        document_findings(facts_of(LINES, ["plot"]), ["character"])
    only_dialogue = document_findings(facts_of(LINES, ["dialogue"]), ["dialogue"])
    assert [i.focus for i in only_dialogue.insights] == ["dialogue"]


def test_the_paragraph_cache_is_bounded_by_its_size() -> None:
    # Paragraphs of about 50 KB each: far fewer fit than a count bound would keep.
    big = [f"Line {n}: " + "Mara walked along the harbour wall at dusk. " * 1200 for n in range(40)]
    for text in big:
        cached_paragraph(text, ("plot",))
    info = paragraph_cache_info()
    assert info.currsize <= info.maxsize == paragraphs.PARAGRAPH_CACHE_BYTES
    misses = info.misses
    cached_paragraph(big[0], ("plot",))  # the least recently used went first
    assert paragraph_cache_info().misses == misses + 1
    cached_paragraph(big[-1], ("plot",))
    assert paragraph_cache_info().misses == misses + 1
