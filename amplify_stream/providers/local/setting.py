"""Setting: sensory detail by sense, cues of weather, place and time, and the paragraphs
that float free of any of them."""

from __future__ import annotations

from collections.abc import Iterator
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


def analyze_setting(doc: Document) -> FocusReport:
    kinds = cue_kinds(doc)
    tally = dict.fromkeys((*SENSE_NAMES, "weather", "place", "time"), 0)
    for kind in kinds.values():
        tally[kind] += 1
    bare = [p for p in doc.paragraphs if _needs_setting(doc, p) and not _has_cue(p, kinds)]
    suggestions: list[SuggestionFound] = list(
        capped(
            suggest(
                doc,
                "setting",
                p.sentences[0].start,
                p.sentences[0].end,
                "No sight, sound, smell, touch, weather, place or time in this paragraph: "
                "one concrete detail grounds the reader in the scene.",
            )
            for p in bare
        )
    )
    opening = doc.paragraphs[0] if doc.paragraphs else None
    if (
        opening is not None
        and opening not in bare
        and len(doc.words) >= OPENING_WORDS
        and not any(kinds.get(w.start) in ("place", "time") for w in opening.words)
    ):
        first = opening.sentences[0]
        suggestions.insert(
            0,
            suggest(
                doc,
                "setting",
                first.start,
                first.end,
                "The opening never says where or when: a place or a time of day in the first "
                "lines orients the reader at once.",
            ),
        )
    senses = sum(tally[s] for s in SENSE_NAMES)
    metrics = {
        "sensory_cues": float(senses),
        **{sense: float(tally[sense]) for sense in SENSE_NAMES},
        "place_cues": float(tally["place"]),
        "time_cues": float(tally["time"]),
        "weather_cues": float(tally["weather"]),
        "paragraphs_without_setting": float(len(bare)),
    }
    by_sense = ", ".join(f"{s} {tally[s]}" for s in SENSE_NAMES)
    summary = (
        f"{count(senses, 'sensory cue')} ({by_sense}); {count(tally['place'], 'place cue')}, "
        f"{count(tally['time'], 'time cue')}, {count(tally['weather'], 'weather cue')}; "
        f"{len(bare)} of "
        f"{count(len(doc.paragraphs), 'paragraph')} without any setting."
    )
    unused = [s for s in SENSE_NAMES if not tally[s]]
    if unused and doc.words:
        summary += f" Never used: {', '.join(unused)}."
    return FocusReport(tuple(suggestions), InsightFound("setting", summary, metrics))


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
