"""Setting: sensory detail by sense, cues of weather, place and time, and the paragraphs
that float free of any of them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from types import MappingProxyType

from amplify_stream.providers.base import InsightFound, SuggestionFound
from amplify_stream.providers.local.document import Document, Paragraph, Word
from amplify_stream.providers.local.findings import FocusReport, capped, count, suggest
from amplify_stream.providers.local.lexicon import (
    PLACE_NAME_PREPOSITIONS,
    PLACE_NOUNS,
    SENSES,
    STOPWORDS,
    TIME_WORDS,
    WEATHER_WORDS,
)

_SUFFIXES = ("s", "es", "ed", "d", "ing", "y", "ly", "er", "est")


def _inflections(stem: str) -> Iterator[str]:
    """Forms of a cue word: creak -> creaks, creaked, creaking; smoke -> smoky; hum -> humming."""
    yield stem
    for suffix in _SUFFIXES:
        yield stem + suffix
        if stem.endswith("e") and suffix[0] in "eiy":
            yield stem[:-1] + suffix
        if (
            len(stem) > 2
            and stem[-1] not in "aeiouwxy"
            and stem[-2] in "aeiou"
            and stem[-3] not in "aeiou"
        ):
            yield stem + stem[-1] + suffix


def _cue_forms() -> dict[str, str]:
    forms: dict[str, str] = {}
    # Later kinds win where forms collide: the more specific sense ("sweet" is a taste
    # before it is anything else), then weather, place nouns, and time words.
    for sense in ("sight", "touch", "sound", "smell", "taste"):
        forms.update(
            dict.fromkeys((f for stem in SENSES[sense] for f in _inflections(stem)), sense)
        )
    forms.update(dict.fromkeys((f for s in WEATHER_WORDS for f in _inflections(s)), "weather"))
    forms.update(dict.fromkeys((f for stem in PLACE_NOUNS for f in _inflections(stem)), "place"))
    forms.update(dict.fromkeys(TIME_WORDS, "time"))
    return forms


# Every inflected form of every cue word, with what it evokes: one lookup per word.
_CUE_FORMS = MappingProxyType(_cue_forms())
SENSE_NAMES = ("sight", "sound", "smell", "touch", "taste")
GROUNDED_PARAGRAPH_WORDS = 30  # shorter paragraphs may lean on their neighbours
OPENING_WORDS = 20  # stories shorter than this need no "where and when"
OPENING_MESSAGE = (
    "The opening never says where or when: a place or a time of day in the first "
    "lines orients the reader at once."
)


@dataclass(frozen=True, slots=True)
class SettingTally:
    """What the setting insight counts in a text; tallies add up (``summed``)."""

    words: int
    paragraphs: int
    bare_paragraphs: int  # long enough to need a cue, and without any
    sight: int
    sound: int
    smell: int
    touch: int
    taste: int
    weather: int
    place: int
    time: int


@dataclass(frozen=True, slots=True)
class Opening:
    """A text's first paragraph, as the rule on a story's opening needs it."""

    where_or_when: bool  # has a place or a time cue
    first_sentence_start: int
    first_sentence: str


def analyze_setting(doc: Document) -> FocusReport:
    suggestions, tally, opening = find_setting(doc)
    if opening is not None and opening_needs_cue(opening, tally.words):
        start = opening.first_sentence_start
        end = start + len(opening.first_sentence)
        suggestions = (suggest(doc, "setting.opening", start, end, OPENING_MESSAGE), *suggestions)
    return FocusReport(suggestions, setting_insight(tally))


def find_setting(
    doc: Document,
) -> tuple[tuple[SuggestionFound, ...], SettingTally, Opening | None]:
    """The paragraphs of ``doc`` without setting (capped), its tally, and its opening (None
    for a text without words): everything but the rule on the opening, which needs the
    whole story's length."""
    kinds = cue_kinds(doc)
    tally = dict.fromkeys((*SENSE_NAMES, "weather", "place", "time"), 0)
    for kind in kinds.values():
        tally[kind] += 1
    bare = [p for p in doc.paragraphs if _needs_setting(doc, p) and not _has_cue(p, kinds)]
    suggestions = tuple(
        capped(
            suggest(
                doc,
                "setting.bare_paragraph",
                p.sentences[0].start,
                p.sentences[0].end,
                "No sight, sound, smell, touch, weather, place or time in this paragraph: "
                "one concrete detail grounds the reader in the scene.",
            )
            for p in bare
        )
    )
    opening = None
    if doc.paragraphs:
        first = doc.paragraphs[0]
        sentence = first.sentences[0]
        opening = Opening(
            where_or_when=any(kinds.get(w.start) in ("place", "time") for w in first.words),
            first_sentence_start=sentence.start,
            first_sentence=doc.text[sentence.start : sentence.end],
        )
    counts = SettingTally(len(doc.words), len(doc.paragraphs), len(bare), **tally)
    return suggestions, counts, opening


def opening_needs_cue(opening: Opening, story_words: int) -> bool:
    return story_words >= OPENING_WORDS and not opening.where_or_when


def setting_insight(tally: SettingTally) -> InsightFound:
    senses = {s: getattr(tally, s) for s in SENSE_NAMES}
    total = sum(senses.values())
    metrics = {
        "sensory_cues": float(total),
        **{sense: float(n) for sense, n in senses.items()},
        "place_cues": float(tally.place),
        "time_cues": float(tally.time),
        "weather_cues": float(tally.weather),
        "paragraphs_without_setting": float(tally.bare_paragraphs),
    }
    by_sense = ", ".join(f"{s} {n}" for s, n in senses.items())
    summary = (
        f"{count(total, 'sensory cue')} ({by_sense}); {count(tally.place, 'place cue')}, "
        f"{count(tally.time, 'time cue')}, {count(tally.weather, 'weather cue')}; "
        f"{tally.bare_paragraphs} of "
        f"{count(tally.paragraphs, 'paragraph')} without any setting."
    )
    unused = [s for s, n in senses.items() if not n]
    if unused and tally.words:
        summary += f" Never used: {', '.join(unused)}."
    return InsightFound("setting", summary, metrics)


def cue_kinds(doc: Document) -> dict[int, str]:
    """What setting each word evokes, by word start: a sense, "weather", "place" or "time"."""
    kinds = {}
    for index, word in enumerate(doc.words):
        kind = _CUE_FORMS.get(word.lower)
        if kind is None and _is_place_name(doc, index, word):
            kind = "place"
        if kind is not None:
            kinds[word.start] = kind
    return kinds


def _is_place_name(doc: Document, index: int, word: Word) -> bool:
    """A capitalized word right after "in", "across", "near"...: "in Lisbon"."""
    return (
        index > 0
        and word.text[0].isupper()
        and word.lower not in STOPWORDS
        and doc.words[index - 1].lower in PLACE_NAME_PREPOSITIONS
        and not doc.text[doc.words[index - 1].end : word.start].strip()
    )


def _needs_setting(doc: Document, paragraph: Paragraph) -> bool:
    words = paragraph.words
    spoken = sum(1 for w in words if doc.in_speech(w.start))
    return len(words) >= GROUNDED_PARAGRAPH_WORDS and spoken * 2 < len(words)


def _has_cue(paragraph: Paragraph, kinds: dict[int, str]) -> bool:
    return any(w.start in kinds for w in paragraph.words)
