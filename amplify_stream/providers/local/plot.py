"""Plot, as the prose carries it: pacing (sentence length and variety), passive voice,
weak openings, words repeated close together, and intensifiers that dilute the action."""

from __future__ import annotations

import statistics
from collections.abc import Iterator

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


def analyze_plot(doc: Document) -> FocusReport:
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
    lengths = [len(s.words) for s in doc.sentences if s.words]
    metrics = {
        "words": float(len(doc.words)),
        "sentences": float(len(lengths)),
        "paragraphs": float(len(doc.paragraphs)),
        "avg_sentence_words": round(statistics.fmean(lengths), 1) if lengths else 0.0,
        "sentence_length_stdev": round(statistics.pstdev(lengths), 1) if lengths else 0.0,
        "long_sentences": float(len(long_sentences)),
        "passive_count": float(len(passives)),
        "weak_openings": float(len(openings)),
        "repeated_words": float(len(repeats)),
        "intensifiers": float(len(intensifiers)),
    }
    summary = (
        f"{count(len(lengths), 'sentence')} averaging {metrics['avg_sentence_words']:g} words "
        f"(spread {metrics['sentence_length_stdev']:g}); "
        f"{count(len(long_sentences), 'long sentence')}, {count(len(passives), 'passive')}, "
        f"{count(len(openings), 'weak opening')}, {count(len(repeats), 'close repeat')}, "
        f"{count(len(intensifiers), 'intensifier')}."
    )
    return FocusReport(tuple(suggestions), InsightFound("plot", summary, metrics))


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
        key = word.lower
        if word.text != key or len(key) < 4 or key in STOPWORDS or key in SPEECH_VERBS:
            continue
        previous = last_seen.get(key)
        last_seen[key] = index
        if previous is not None and index - previous <= REPEAT_WINDOW_WORDS:
            yield suggest(
                doc,
                "plot",
                word.start,
                word.end,
                f"'{word.text}' again, {count(index - previous, 'word')} after the last one: "
                "vary it, or cut one.",
            )


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
