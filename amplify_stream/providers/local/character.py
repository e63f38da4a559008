"""Character: who is named and how often, filter words, emotions told instead of shown,
and names so alike that readers mix them up."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from amplify_stream.providers.base import InsightFound, SuggestionFound
from amplify_stream.providers.local.document import Document, Word
from amplify_stream.providers.local.findings import FocusReport, capped, count, share, suggest
from amplify_stream.providers.local.lexicon import (
    DEGREE_WORDS,
    EMOTIONS,
    FILTER_WORDS,
    FILTERING_SUBJECTS,
    LINKING_VERBS,
    NAME_TITLES,
    NOT_ADVERBS,
    NOT_NAMES,
    PERCEIVED_OPENERS,
    PLACE_NAME_PREPOSITIONS,
    SAID_BOOKISMS,
    SPEECH_VERBS,
    STOPWORDS,
    TIME_WORDS,
    alternation,
)

_TELLING = re.compile(
    rf"\b(?:{alternation(LINKING_VERBS)})\s+(?:(?:{alternation(DEGREE_WORDS)})\s+)?"
    rf"(?P<emotion>{alternation(EMOTIONS)})\b",
    re.IGNORECASE,
)
# The word after a named emotion, when the clause goes on (none: it ends there).
_NEXT_WORD = re.compile(r"[ \t]+(\w+)")
# After these the emotion is the start of a scene, not a label: "surprised to see",
# "excited and happy", "more embarrassed than ever", "lonely eating".
_TELLING_GOES_ON = frozenset({"to", "and", "than", "as", "enough"})
_PERSONS = frozenset({"he", "she", "they", "i", "we"})
_POSSESSIVE = re.compile(r"['’]s?$")  # noqa: RUF001 - both apostrophes
_MAX_CAST = 30  # names compared pairwise for look-alikes


@dataclass(frozen=True, slots=True)
class CharacterTally:
    """What the character insight counts besides the cast; tallies add up (``summed``)."""

    filter_words: int
    telling: int


@dataclass(frozen=True, slots=True)
class NameSightings:
    """How a capitalized word that could be a name is met in a text: enough to decide,
    with the sightings of the other texts, whether it names a character."""

    name: str
    mentions: int
    first_start: int  # where the first mention starts
    mid: int  # mentions where capitals are not automatic (not opening a sentence or speech)
    mid_elsewhere: bool  # some of them not right after "in", "across", "near"...
    openings: int  # mentions opening a sentence or a speech
    speaks: bool  # some opening mention followed by a speech verb ("Mary said")

    def merged(self, later: NameSightings) -> NameSightings:
        """These sightings and those of a later text, as one."""
        return NameSightings(
            self.name,
            self.mentions + later.mentions,
            self.first_start,
            self.mid + later.mid,
            self.mid_elsewhere or later.mid_elsewhere,
            self.openings + later.openings,
            self.speaks or later.speaks,
        )


def analyze_character(doc: Document) -> FocusReport:
    sightings = name_sightings(doc)
    lower_case = lower_case_words(doc)
    cast = [s for s in sightings if is_character(s, lower_case.__contains__)]
    suggestions, tally = find_character(doc)
    lookalikes = [
        suggest(
            doc,
            "character.lookalike_names",
            later.first_start,
            later.first_start + len(later.name),
            message,
        )
        for later, message in lookalike_names(cast)
    ]
    suggestions += tuple(capped(lookalikes))
    mentions = {s.name: s.mentions for s in cast}
    return FocusReport(suggestions, character_insight(mentions, tally, len(lookalikes)))


def find_character(doc: Document) -> tuple[tuple[SuggestionFound, ...], CharacterTally]:
    """Filter words and emotions told (each rule capped), and their tally: everything but
    the cast and its look-alike names, which take the whole story."""
    telling = [m for m in _TELLING.finditer(doc.text) if _tells(doc, m)]
    told = {w.start for m in telling for w in doc.words_in(m.start(), m.end())}
    filters = [w for w in _filters(doc) if w.start not in told]
    suggestions = [
        *capped(
            suggest(
                doc,
                "character.filter_word",
                w.start,
                w.end,
                f"Filter word: '{w.text}' puts the reader behind the character's eyes; "
                f"{FILTER_WORDS[w.lower]}.",
            )
            for w in filters
        ),
        *capped(
            suggest(
                doc,
                "character.telling",
                m.start(),
                m.end(),
                f"Telling: '{m.group()}' names the emotion; show {m.group('emotion').lower()} "
                "through what the character does, says or notices.",
            )
            for m in telling
        ),
    ]
    return tuple(suggestions), CharacterTally(len(filters), len(telling))


def _tells(doc: Document, match: re.Match[str]) -> bool:
    """A character's emotion named as what is said of them: "Tom was angry.", "she felt
    sad;", "was angry at the wall" (not "was surprised to see", "it was lonely eating",
    "was too excited and happy, and...", "more embarrassed than ever"): narration, a
    person before, and the clause not going on to a scene of its own."""
    if doc.in_speech(match.start()):
        return False
    before = doc.words_in(max(0, match.start() - 40), match.start())
    if not before or not _adjacent(doc.text, before[-1].end, match.start()):
        return False
    if not (before[-1].lower in _PERSONS or name_form(before[-1]) is not None):
        return False
    after = _NEXT_WORD.match(doc.text, match.end())
    if after is None:
        return True  # the clause ends
    word = after.group(1).lower()
    return word not in _TELLING_GOES_ON and not word.endswith("ing")


def _filters(doc: Document) -> list[Word]:
    """Perceptions put between the reader and the thing in close third person: "she saw
    the door", "Tom heard a creak" (not "I saw", "had heard", "felt sorry", "saw to it")."""
    words, found = doc.narration_words, []
    for i, word in enumerate(words[1:-1], 1):
        if word.lower not in FILTER_WORDS:
            continue
        subject, thing = words[i - 1], words[i + 1]
        if not (
            _adjacent(doc.text, subject.end, word.start)
            and _adjacent(doc.text, word.end, thing.start)
        ):
            continue
        person = subject.lower in FILTERING_SUBJECTS or name_form(subject) is not None
        if person and thing.lower in PERCEIVED_OPENERS:
            found.append(word)
    return found


def _adjacent(text: str, end: int, start: int) -> bool:
    return not text[end:start].strip()


def character_insight(
    mentions: dict[str, int], tally: CharacterTally, lookalikes: int
) -> InsightFound:
    """``mentions``: how often each character is named, in order of first mention."""
    total = sum(mentions.values())
    metrics = {
        "characters_named": float(len(mentions)),
        "name_mentions": float(total),
        "lead_share": share(max(mentions.values(), default=0), total),
        "filter_words": float(tally.filter_words),
        "telling_emotions": float(tally.telling),
        "lookalike_names": float(lookalikes),
    }
    if mentions:
        leads = sorted(mentions.items(), key=lambda item: -item[1])[:4]
        who = ", ".join(f"{name} ({n})" for name, n in leads)
        summary = f"{count(len(mentions), 'named character')}: {who}"
    else:
        summary = "No named characters; a name helps readers attach to a character"
    summary += (
        f"; {count(tally.filter_words, 'filter word')}, "
        f"{count(tally.telling, 'emotion')} told rather than shown."
    )
    return InsightFound("character", summary, metrics)


def name_sightings(doc: Document) -> tuple[NameSightings, ...]:
    """Every word that could be a name, in order of first mention, as met in ``doc``."""
    found: dict[str, NameSightings] = {}
    for i, word in enumerate(doc.words):
        name = name_form(word)
        if name is None:
            continue
        if word.start in doc.opening_starts:
            seen = NameSightings(name, 1, word.start, 0, False, 1, _speech_verb_at(doc, i + 1))
        else:
            elsewhere = not (i > 0 and doc.words[i - 1].lower in PLACE_NAME_PREPOSITIONS)
            seen = NameSightings(name, 1, word.start, 1, elsewhere, 0, False)
        found[name] = found[name].merged(seen) if name in found else seen
    return tuple(found.values())


def lower_case_words(doc: Document) -> frozenset[str]:
    return frozenset(w.text for w in doc.words if w.text == w.lower)


def is_character(sightings: NameSightings, in_lower_case: Callable[[str], bool]) -> bool:
    """Whether a story's sightings of a word name a character. A name is a capitalized
    word met where capitals are not automatic (not opening a sentence or a speech), unless
    it is only ever met after "in", "across", "near"... (a place). A word seen only at
    openings counts when it never appears in lower case (``in_lower_case``) and either
    opens twice or is followed by a speech verb ("Mary said")."""
    s = sightings
    if s.mid:
        return s.mid_elsewhere
    if in_lower_case(s.name.lower()) or not _could_be_name(s.name):
        return False
    return s.openings > 1 or s.speaks


def _could_be_name(name: str) -> bool:
    """Not an adverb, participle or gerund opening a sentence ("Slowly", "Walking")."""
    lower = name.lower()
    if lower.endswith("ly"):
        return lower in NOT_ADVERBS  # "Emily", "Lily"
    return not lower.endswith(("ing", "ed")) and lower not in TIME_WORDS


def _speech_verb_at(doc: Document, index: int) -> bool:
    return index < len(doc.words) and (
        doc.words[index].lower in SPEECH_VERBS or doc.words[index].lower in SAID_BOOKISMS
    )


def name_form(word: Word) -> str | None:
    """The name a word spells ("Anna's" -> "Anna"), or None when it cannot be one."""
    name = _POSSESSIVE.sub("", word.text)
    if not name or not name[0].isupper() or (len(name) > 1 and name.isupper()):
        return None  # lower case, or an acronym or a shout
    lower = name.lower()
    if lower in STOPWORDS or lower in NOT_NAMES or name == "I" or lower.startswith(("i'", "i’")):  # noqa: RUF001
        return None
    return name


def lookalike_names(cast: Sequence[NameSightings]) -> list[tuple[NameSightings, str]]:
    """The names of ``cast`` (in order of first mention) that look like an earlier one,
    with what to tell the writer."""
    names = [s for s in cast[:_MAX_CAST] if s.name.lower() not in NAME_TITLES]
    found = []
    for j, later in enumerate(names):
        earlier = next((s.name for s in names[:j] if _look_alike(s.name, later.name)), None)
        if earlier is not None:
            message = (
                f"'{later.name}' looks like '{earlier}': readers skim names by their shape, "
                "so distinct initials or lengths keep characters apart."
            )
            found.append((later, message))
    return found


def _look_alike(a: str, b: str) -> bool:
    a, b = a.lower(), b.lower()
    if a[0] != b[0] or a == b or min(len(a), len(b)) < 3:
        return False
    return _edit_distance(a, b) <= (1 if min(len(a), len(b)) < 5 else 2)


def _edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]
