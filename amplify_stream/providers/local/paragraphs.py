"""The ``local`` analysis of a live document, a paragraph (a line) at a time.

``analyze_paragraph`` reads one line and keeps what the document-level findings need;
``document_findings`` combines those facts, without reading any text again, into what
takes more than a line: look-alike names, close repeats across a line break, the opening
without a place or time, and the insights. Both run the rules of the story analysis
(``find_*`` of each focus module), so a rule gives the same suggestion in either.

What holds per line. A paragraph here is a line, whereas a story with blank lines wraps
its paragraphs over several; rules that stay inside a line give exactly the story's
suggestions for a text written one paragraph a line. Where a story rule can reach across a
line break, a document reads the line alone:
- quoted speech ends with its line (as in a story's paragraph), and single quotes count as
  speech in a line without double quotes (a story decides that once for its whole text);
- a dialogue tag on the line before its speech ('He said:' / '"Go."'), a passive or a
  "was angry" split by the line break, "in" / "Lisbon" as a place, and a name opening a
  line alone with "said" opening the next are not found;
- each rule is capped per paragraph (``MAX_PER_RULE``), not per document: a paragraph's
  suggestions must not depend on the others, or they could not be cached.
Close repeats do cross lines: each line keeps its edge words (``RepeatEdges``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from cachetools import CacheInfo, LRUCache, cached

from amplify_stream.events import Focus
from amplify_stream.providers.base import InsightFound, SuggestionFound
from amplify_stream.providers.local.analysis import in_reading_order, reading_key
from amplify_stream.providers.local.character import (
    CharacterTally,
    NameSightings,
    character_insight,
    find_character,
    is_character,
    lookalike_names,
    lower_case_words,
    name_sightings,
)
from amplify_stream.providers.local.dialogue import (
    UNATTRIBUTED_MESSAGE,
    DialogueTally,
    SpeechParagraph,
    dialogue_insight,
    find_dialogue,
    speech_paragraph,
    unattributed,
)
from amplify_stream.providers.local.document import Document
from amplify_stream.providers.local.findings import summed
from amplify_stream.providers.local.plot import (
    PlotTally,
    RepeatEdges,
    find_plot,
    plot_insight,
    repeat_edges,
    repeats_across,
)
from amplify_stream.providers.local.setting import (
    OPENING_MESSAGE,
    Opening,
    SettingTally,
    find_setting,
    opening_needs_cue,
    setting_insight,
)

ALL_FOCUSES: tuple[Focus, ...] = ("plot", "character", "dialogue", "setting")
T = TypeVar("T")
# What the process's paragraph cache may hold, in bytes as ``_entry_bytes`` estimates
# them (measured with tracemalloc: about 1.5 KB a paragraph and 12-25 bytes a character).
PARAGRAPH_CACHE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ParagraphFacts:
    """One paragraph's analysis: its suggestions, with offsets from the paragraph's start
    (code points) in reading order, and what the document-level findings need. Immutable
    and hashable. A focus not asked for leaves its fields None or empty."""

    focus: tuple[Focus, ...]
    suggestions: tuple[SuggestionFound, ...]
    plot: PlotTally | None = None
    repeat_edges: RepeatEdges | None = None
    character: CharacterTally | None = None
    names: tuple[NameSightings, ...] = ()  # words that could be names, by first mention
    lower_case: frozenset[str] = frozenset()  # the words written in lower case
    dialogue: DialogueTally | None = None
    speech: SpeechParagraph | None = None  # None for a line without any word or mark
    setting: SettingTally | None = None
    opening: Opening | None = None  # None for a line without any word or mark


@dataclass(frozen=True, slots=True)
class ParagraphSuggestion:
    paragraph: int  # index in the sequence given to ``document_findings``
    suggestion: SuggestionFound  # offsets from that paragraph's start


@dataclass(frozen=True, slots=True)
class DocumentFindings:
    suggestions: tuple[ParagraphSuggestion, ...]  # by paragraph, then in reading order
    insights: tuple[InsightFound, ...]  # one per focus, in the order asked


def analyze_paragraph(text: str, focus: Sequence[Focus]) -> ParagraphFacts:
    """The facts of one paragraph: a line, or the lines of one paragraph hard-wrapped
    (a line break inside is a wrap). Pure and deterministic, and not cached here: cache
    by ``(text, focus)`` where it is called, or call ``cached_paragraph``, the process's
    shared cache."""
    focuses = tuple(dict.fromkeys(focus))
    doc = Document(text, wrapped="\n" in text)
    found: list[SuggestionFound] = []
    plot = edges = character = dialogue = setting = opening = None
    names: tuple[NameSightings, ...] = ()
    lower_case: frozenset[str] = frozenset()
    if "plot" in focuses:
        suggestions, plot = find_plot(doc)
        found += suggestions
        edges = repeat_edges(doc)
    if "character" in focuses:
        suggestions, character = find_character(doc)
        found += suggestions
        names, lower_case = name_sightings(doc), lower_case_words(doc)
    speech = None
    if "dialogue" in focuses:
        suggestions, dialogue = find_dialogue(doc)
        found += suggestions
        speech = speech_paragraph(doc, doc.paragraphs[0]) if doc.paragraphs else None
    if "setting" in focuses:
        suggestions, setting, opening = find_setting(doc)
        found += suggestions
    return ParagraphFacts(
        focuses,
        tuple(in_reading_order(found, focuses)),
        plot=plot,
        repeat_edges=edges,
        character=character,
        names=names,
        lower_case=lower_case,
        dialogue=dialogue,
        speech=speech,
        setting=setting,
        opening=opening,
    )


@dataclass(frozen=True, slots=True)
class _Cached:
    facts: ParagraphFacts
    bytes: int


def _entry_bytes(text: str) -> int:
    return 2_000 + 24 * len(text)


_cache: LRUCache[Any, _Cached] = LRUCache(PARAGRAPH_CACHE_BYTES, getsizeof=lambda e: e.bytes)


@cached(_cache, info=True)
def _cached_paragraph(text: str, focus: tuple[Focus, ...]) -> _Cached:
    return _Cached(analyze_paragraph(text, focus), _entry_bytes(text))


def cached_paragraph(text: str, focus: tuple[Focus, ...]) -> ParagraphFacts:
    """``analyze_paragraph`` through one cache shared by every document of the process,
    so undo, paste-back or the same paragraph elsewhere costs a lookup. Least recently
    used first out, past ``PARAGRAPH_CACHE_BYTES`` (a paragraph read again costs about a
    millisecond)."""
    return _cached_paragraph(text, focus).facts


def paragraph_cache_info() -> CacheInfo:
    """Hits, misses, and the cache's estimated bytes (``currsize``) of ``maxsize``."""
    return _cached_paragraph.cache_info()


def document_findings(
    paragraphs: Sequence[ParagraphFacts], focus: Sequence[Focus]
) -> DocumentFindings:
    """What takes the whole document, from its paragraphs' facts alone (each analyzed
    with at least ``focus``), in document order: the suggestions that span paragraphs or
    depend on the rest (look-alike names, close repeats across a line break, the opening
    without a place or time) and one insight per focus. Costs microseconds a paragraph."""
    focuses = tuple(dict.fromkeys(focus))
    if any(f not in p.focus for p in paragraphs for f in focuses):
        raise ValueError("every paragraph must be analyzed for the focuses asked")
    facts = [*paragraphs] or [_BLANK_LINE]  # an empty document reads as one blank line
    found: list[ParagraphSuggestion] = []
    insights = []
    for f in focuses:
        if f == "plot":
            insights.append(_plot(facts, found))
        elif f == "character":
            insights.append(_character(facts, found))
        elif f == "dialogue":
            insights.append(_dialogue(facts, found))
        else:
            insights.append(_setting(facts, found))
    in_order = reading_key(focuses)
    by_paragraph = sorted(found, key=lambda s: (s.paragraph, *in_order(s.suggestion)))
    return DocumentFindings(tuple(by_paragraph), tuple(insights))


def _plot(facts: Sequence[ParagraphFacts], found: list[ParagraphSuggestion]) -> InsightFound:
    across = [
        ParagraphSuggestion(i, s)
        for i, s in repeats_across([_present(p.repeat_edges) for p in facts])
    ]
    found += across
    tally = summed([_present(p.plot) for p in facts])
    return plot_insight(replace(tally, repeats=tally.repeats + len(across)))


def _character(facts: Sequence[ParagraphFacts], found: list[ParagraphSuggestion]) -> InsightFound:
    # Each word that could be a name, over the whole document, with where it first appears.
    sightings: dict[str, tuple[int, NameSightings]] = {}
    for i, paragraph in enumerate(facts):
        for seen in paragraph.names:
            first = sightings.get(seen.name)
            sightings[seen.name] = (i, seen) if first is None else (first[0], first[1].merged(seen))

    def in_lower_case(word: str) -> bool:
        return any(word in p.lower_case for p in facts)

    cast = [s for _, s in sightings.values() if is_character(s, in_lower_case)]
    lookalikes = lookalike_names(cast)
    for later, message in lookalikes:
        suggestion = SuggestionFound(
            "character",
            later.name,
            message,
            start=later.first_start,
            rule="character.lookalike_names",
        )
        found.append(ParagraphSuggestion(sightings[later.name][0], suggestion))
    tally = summed([_present(p.character) for p in facts])
    return character_insight({s.name: s.mentions for s in cast}, tally, len(lookalikes))


def _dialogue(facts: Sequence[ParagraphFacts], found: list[ParagraphSuggestion]) -> InsightFound:
    for i in unattributed([p.speech for p in facts]):
        speech = facts[i].speech
        assert speech is not None and speech.alone is not None
        suggestion = SuggestionFound(
            "dialogue",
            speech.quote,
            UNATTRIBUTED_MESSAGE,
            start=speech.alone[0],
            rule="dialogue.unattributed",
        )
        found.append(ParagraphSuggestion(i, suggestion))
    return dialogue_insight(summed([_present(p.dialogue) for p in facts]))


def _setting(facts: Sequence[ParagraphFacts], found: list[ParagraphSuggestion]) -> InsightFound:
    tally = summed([_present(p.setting) for p in facts])
    first = next(((i, p.opening) for i, p in enumerate(facts) if p.opening is not None), None)
    if first is not None and opening_needs_cue(first[1], tally.words):
        index, opening = first
        suggestion = SuggestionFound(
            "setting",
            opening.first_sentence,
            OPENING_MESSAGE,
            start=opening.first_sentence_start,
            rule="setting.opening",
        )
        found.append(ParagraphSuggestion(index, suggestion))
    return setting_insight(tally)


def _present(fact: T | None) -> T:
    if fact is None:  # document_findings checked the focuses: a bug if it happens
        raise AssertionError("paragraph facts without the focus asked")
    return fact


_BLANK_LINE = analyze_paragraph("", ALL_FOCUSES)
