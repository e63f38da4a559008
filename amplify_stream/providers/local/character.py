"""Character: who is named and how often, filter words, emotions told instead of shown,
and names so alike that readers mix them up."""

from __future__ import annotations

import re

from amplify_stream.providers.base import InsightFound, SuggestionFound
from amplify_stream.providers.local.document import Document, Word
from amplify_stream.providers.local.findings import FocusReport, capped, count, share, suggest
from amplify_stream.providers.local.lexicon import (
    DEGREE_WORDS,
    EMOTIONS,
    FILTER_WORDS,
    LINKING_VERBS,
    NAME_TITLES,
    NOT_ADVERBS,
    NOT_NAMES,
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
_POSSESSIVE = re.compile(r"['’]s?$")  # noqa: RUF001 - both apostrophes
_MAX_CAST = 30  # names compared pairwise for look-alikes


def analyze_character(doc: Document) -> FocusReport:
    cast = named_characters(doc)
    telling = [m for m in _TELLING.finditer(doc.text) if not doc.in_speech(m.start())]
    told = {w.start for m in telling for w in doc.words_in(m.start(), m.end())}
    filters = [w for w in doc.narration_words if w.lower in FILTER_WORDS and w.start not in told]
    lookalikes = _lookalikes(doc, cast)
    suggestions = [
        *capped(
            suggest(
                doc,
                "character",
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
                "character",
                m.start(),
                m.end(),
                f"Telling: '{m.group()}' names the emotion; show {m.group('emotion').lower()} "
                "through what the character does, says or notices.",
            )
            for m in telling
        ),
        *capped(lookalikes),
    ]
    mentions = sum(len(words) for words in cast.values())
    metrics = {
        "characters_named": float(len(cast)),
        "name_mentions": float(mentions),
        "lead_share": share(max((len(w) for w in cast.values()), default=0), mentions),
        "filter_words": float(len(filters)),
        "telling_emotions": float(len(telling)),
        "lookalike_names": float(len(lookalikes)),
    }
    if cast:
        leads = sorted(cast.items(), key=lambda item: -len(item[1]))[:4]
        who = ", ".join(f"{name} ({len(words)})" for name, words in leads)
        summary = f"{count(len(cast), 'named character')}: {who}"
    else:
        summary = "No named characters; a name helps readers attach to a character"
    summary += (
        f"; {count(len(filters), 'filter word')}, "
        f"{count(len(telling), 'emotion')} told rather than shown."
    )
    return FocusReport(tuple(suggestions), InsightFound("character", summary, metrics))


def named_characters(doc: Document) -> dict[str, list[Word]]:
    """Characters by name, in order of first mention, with every mention.

    A name is a capitalized word met where capitals are not automatic (not opening a
    sentence or a speech), unless it is only ever met after "in", "across", "near"...
    (a place). A word seen only at openings counts when it never appears in lower case
    and either opens twice or is followed by a speech verb ("Mary said")."""
    mid: dict[str, list[bool]] = {}  # name -> for each mention, is it after a place word
    openings: dict[str, list[int]] = {}
    spelled = [name_form(word) for word in doc.words]
    for i, (word, name) in enumerate(zip(doc.words, spelled, strict=True)):
        if name is None:
            continue
        if word.start in doc.opening_starts:
            openings.setdefault(name, []).append(i)
        else:
            mid.setdefault(name, []).append(
                i > 0 and doc.words[i - 1].lower in PLACE_NAME_PREPOSITIONS
            )
    names = {name for name, at_places in mid.items() if not all(at_places)}
    lower_case = {w.text for w in doc.words if w.text == w.lower}
    for name, indices in openings.items():
        if name in mid or name.lower() in lower_case or not _could_be_name(name):
            continue
        speaks = any(_speech_verb_at(doc, i + 1) for i in indices)
        if len(indices) > 1 or speaks:
            names.add(name)
    cast: dict[str, list[Word]] = {}
    for word, name in zip(doc.words, spelled, strict=True):
        if name in names:
            cast.setdefault(name, []).append(word)
    return cast


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


def _lookalikes(doc: Document, cast: dict[str, list[Word]]) -> list[SuggestionFound]:
    names = [n for n in list(cast)[:_MAX_CAST] if n.lower() not in NAME_TITLES]
    found = []
    for j, later in enumerate(names):
        earlier = next((n for n in names[:j] if _look_alike(n, later)), None)
        if earlier is not None:
            first = cast[later][0]
            found.append(
                suggest(
                    doc,
                    "character",
                    first.start,
                    first.start + len(later),
                    f"'{later}' looks like '{earlier}': readers skim names by their shape, "
                    "so distinct initials or lengths keep characters apart.",
                )
            )
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
