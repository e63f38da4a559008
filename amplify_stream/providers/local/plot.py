"""Plot, as the prose carries it: pacing (sentence length and variety), passive voice,
weak openings, words repeated close together, and intensifiers that dilute the action."""

from __future__ import annotations

import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from amplify_stream.providers.base import InsightFound, SuggestionFound
from amplify_stream.providers.local.document import Document, Sentence, Word
from amplify_stream.providers.local.findings import FocusReport, capped, count, suggest
from amplify_stream.providers.local.lexicon import (
    BE_VERBS,
    FILLER_WORDS,
    INTENSIFIERS,
    IRREGULAR_PARTICIPLES,
    NOT_PARTICIPLES,
    SPEECH_VERBS,
    STOPWORDS,
    WEAK_OPENINGS,
)
from amplify_stream.providers.local.rewrite import droppable_intensifier

LONG_SENTENCE_WORDS = 35
REPEAT_WINDOW_WORDS = 25  # the same word again within this many words is noticeable
_ADVERBS_BEFORE_PARTICIPLE = frozenset({"not", "never", "also", "still", "already", "just"})


@dataclass(frozen=True, slots=True)
class PlotTally:
    """What the plot insight counts in a text; several texts' tallies add up (``summed``)."""

    words: int
    sentence_lengths: tuple[int, ...]  # in words, of the sentences that have any
    paragraphs: int
    long_sentences: int
    passives: int
    weak_openings: int
    repeats: int
    intensifiers: int


def analyze_plot(doc: Document) -> FocusReport:
    suggestions, tally = find_plot(doc)
    return FocusReport(suggestions, plot_insight(tally))


def find_plot(doc: Document) -> tuple[tuple[SuggestionFound, ...], PlotTally]:
    """The plot suggestions of ``doc`` (each rule capped) and its tally."""
    passives = list(_passives(doc))
    long_sentences = [s for s in doc.sentences if _spaced_words(s) > LONG_SENTENCE_WORDS]
    openings = [s.words[:2] for s in doc.sentences if _weak_opening(doc, s.words)]
    repeats = list(_repeats(doc))
    intensifiers = [w for w in doc.narration_words if w.lower in INTENSIFIERS | FILLER_WORDS]
    suggestions = [
        *capped(passives),
        *capped(
            suggest(
                doc,
                "plot",
                s.start,
                s.end,
                f"{_spaced_words(s)} words in one sentence: split it where the action turns, "
                "or set it against a short one.",
            )
            for s in long_sentences
        ),
        *capped(
            suggest(
                doc,
                "plot",
                first.start,
                second.end,
                f"Weak opening: '{doc.text[first.start : second.end]}' delays the subject; "
                "start with who acts or what happens.",
            )
            for first, second in openings
        ),
        *capped(repeats),
        *capped(_intensifier_suggestion(doc, w) for w in intensifiers),
    ]
    tally = PlotTally(
        words=len(doc.words),
        sentence_lengths=tuple(len(s.words) for s in doc.sentences if s.words),
        paragraphs=len(doc.paragraphs),
        long_sentences=len(long_sentences),
        passives=len(passives),
        weak_openings=len(openings),
        repeats=len(repeats),
        intensifiers=len(intensifiers),
    )
    return tuple(suggestions), tally


def plot_insight(tally: PlotTally) -> InsightFound:
    lengths = tally.sentence_lengths
    metrics = {
        "words": float(tally.words),
        "sentences": float(len(lengths)),
        "paragraphs": float(tally.paragraphs),
        "avg_sentence_words": round(statistics.fmean(lengths), 1) if lengths else 0.0,
        "sentence_length_stdev": round(statistics.pstdev(lengths), 1) if lengths else 0.0,
        "long_sentences": float(tally.long_sentences),
        "passive_count": float(tally.passives),
        "weak_openings": float(tally.weak_openings),
        "repeated_words": float(tally.repeats),
        "intensifiers": float(tally.intensifiers),
    }
    summary = (
        f"{count(len(lengths), 'sentence')} averaging {metrics['avg_sentence_words']:g} words "
        f"(spread {metrics['sentence_length_stdev']:g}); "
        f"{count(tally.long_sentences, 'long sentence')}, {count(tally.passives, 'passive')}, "
        f"{count(tally.weak_openings, 'weak opening')}, {count(tally.repeats, 'close repeat')}, "
        f"{count(tally.intensifiers, 'intensifier')}."
    )
    return InsightFound("plot", summary, metrics)


def _spaced_words(sentence: Sentence) -> int:
    """Words as English counts them: a CJK character is not a word's worth of sentence."""
    return sum(1 for w in sentence.words if not w.is_cjk)


def _passives(doc: Document) -> Iterator[SuggestionFound]:
    """A be-verb, at most one adverb, then a past participle: "was taken", "were quietly
    moved". Narration only: characters may speak as they like."""
    words = doc.narration_words
    for i, be in enumerate(words):
        if be.lower not in BE_VERBS:
            continue
        j = i + 1
        if j < len(words) and _is_adverb(words[j]) and _adjacent(doc, be, words[j]):
            j += 1
        if (
            j >= len(words)
            or not _is_participle(words[j])
            or not _adjacent(doc, words[j - 1], words[j])
        ):
            continue
        by = j + 1 < len(words) and words[j + 1].lower == "by"
        actor = "'by ...' already names who acts: put them first" if by else "name who acts"
        yield suggest(
            doc,
            "plot",
            be.start,
            words[j].end,
            f"Passive voice: '{doc.text[be.start : words[j].end]}' hides the actor; {actor}, "
            "and the sentence moves.",
        )


def _adjacent(doc: Document, first: Word, second: Word) -> bool:
    """Only spaces between: no punctuation, no speech."""
    return not doc.text[first.end : second.start].strip()


def _is_adverb(word: Word) -> bool:
    return word.lower in _ADVERBS_BEFORE_PARTICIPLE or (
        word.lower.endswith("ly") and len(word.lower) > 4
    )


def _is_participle(word: Word) -> bool:
    lower = word.lower
    if lower in NOT_PARTICIPLES:
        return False
    return lower in IRREGULAR_PARTICIPLES or (len(lower) > 4 and lower.endswith("ed"))


def _weak_opening(doc: Document, words: tuple[Word, ...]) -> bool:
    return (
        len(words) > 2
        and (words[0].lower, words[1].lower) in WEAK_OPENINGS
        and not doc.in_speech(words[0].start)
    )


def _repeats(doc: Document) -> Iterator[SuggestionFound]:
    """A lower-case content word met again within REPEAT_WINDOW_WORDS narration words."""
    last_seen: dict[str, int] = {}
    for index, word in enumerate(doc.narration_words):
        key = _repeatable(word)
        if key is None:
            continue
        previous = last_seen.get(key)
        last_seen[key] = index
        if previous is not None and index - previous <= REPEAT_WINDOW_WORDS:
            yield suggest(
                doc, "plot", word.start, word.end, _repeat_message(word.text, index - previous)
            )


def _repeatable(word: Word) -> str | None:
    """The key a word repeats by: lower-case content words only."""
    key = word.lower
    if word.text != key or len(key) < 4 or key in STOPWORDS or key in SPEECH_VERBS:
        return None
    return key


def _repeat_message(text: str, distance: int) -> str:
    return f"'{text}' again, {count(distance, 'word')} after the last one: vary it, or cut one."


@dataclass(frozen=True, slots=True)
class RepeatEdges:
    """The words of a text that a repeat reaching into the next texts or from the ones
    before can involve, so that such repeats are found without reading the texts again."""

    narration_words: int
    # The first sighting of each repeatable word among the first REPEAT_WINDOW_WORDS
    # narration words: (key, index among the narration words, start, text).
    heads: tuple[tuple[str, int, int, str], ...]
    # The last sighting of each repeatable word among the last ones: (key, narration
    # words after it).
    tails: tuple[tuple[str, int], ...]


def repeat_edges(doc: Document) -> RepeatEdges:
    words = doc.narration_words
    heads: dict[str, tuple[str, int, int, str]] = {}
    for index, word in enumerate(words[:REPEAT_WINDOW_WORDS]):
        key = _repeatable(word)
        if key is not None and key not in heads:
            heads[key] = (key, index, word.start, word.text)
    tails: dict[str, int] = {}
    for back, word in enumerate(reversed(words[-REPEAT_WINDOW_WORDS:])):
        key = _repeatable(word)
        if key is not None and key not in tails:
            tails[key] = back
    return RepeatEdges(len(words), tuple(heads.values()), tuple(tails.items()))


def repeats_across(texts: Sequence[RepeatEdges]) -> Iterator[tuple[int, SuggestionFound]]:
    """The repeats whose earlier word lies in an earlier text, as ``_repeats`` would find
    them in the texts joined: (index of the text, suggestion with offsets in that text)."""
    tails = [dict(t.tails) for t in texts]
    for k, text in enumerate(texts):
        for key, index, start, quote in text.heads:
            between = index  # narration words between the earlier text's end and this one
            for p in range(k - 1, -1, -1):
                back = tails[p].get(key)
                if back is not None:
                    distance = between + back + 1
                    if distance <= REPEAT_WINDOW_WORDS:
                        message = _repeat_message(quote, distance)
                        yield k, SuggestionFound("plot", quote, message, start=start)
                    break
                between += texts[p].narration_words
                if between >= REPEAT_WINDOW_WORDS:
                    break


def _intensifier_suggestion(doc: Document, word: Word) -> SuggestionFound:
    adjective = droppable_intensifier(doc, word)
    if adjective is not None:
        return suggest(
            doc,
            "plot",
            word.start,
            adjective.end,
            f"'{word.text}' props up '{adjective.text}': a stronger word, or the plain one, "
            "hits harder.",
            adjective.text,
        )
    if word.lower in FILLER_WORDS:
        message = (
            f"'{word.text}' is usually filler: cut it unless it means 'only' or 'a moment ago'."
        )
    else:
        message = f"'{word.text}' dilutes what follows: a more precise word does more."
    return suggest(doc, "plot", word.start, word.end, message)
