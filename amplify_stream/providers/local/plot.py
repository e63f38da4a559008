"""Plot, as the prose carries it: pacing (sentence length and variety), passive voice,
weak openings, words repeated close together, and intensifiers that dilute the action."""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from amplify_stream.providers.base import InsightFound, SuggestionFound
from amplify_stream.providers.local.document import WORD_RE, Document, Sentence, Word
from amplify_stream.providers.local.findings import FocusReport, capped, count, suggest
from amplify_stream.providers.local.lexicon import (
    BE_VERBS,
    COMMON_LONG_WORDS,
    FILLER_WORDS,
    HAND_ACTS,
    IRREGULAR_PARTICIPLES,
    NOT_PARTICIPLES,
    PADDING,
    SPEECH_VERBS,
    STOPWORDS,
    STRONGER,
    WEAK_OPENINGS,
    WHEN_WORDS,
)
from amplify_stream.providers.local.rewrite import padded_adjective

# A sentence is tangled, not just long, when it runs on without the pauses that let a
# long sentence be read: a list or a periodic sentence of sixty words can be clear.
LONG_SENTENCE_WORDS = 45
UNBROKEN_WORDS = 25  # words without a comma, colon, semicolon, dash or bracket
STACKED_RUN_WORDS = 20  # ... or this many, with STACKED_CLAUSES subordinate clauses
STACKED_CLAUSES = 5
STACKED_WORDS = 55  # ... or this many words with STACKED_CLAUSES, whatever the pauses
_PAUSES = re.compile(r"[,;:—–()\[\]]")  # noqa: RUF001 - both dashes
_SUBORDINATORS = frozenset(
    [
        "that",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "while",
        "because",
        "although",
        "though",
        "since",
        "if",
        "unless",
        "until",
        "after",
        "before",
    ]
)
REPEAT_WINDOW_WORDS = 25  # the same word again within this many words is noticeable
# Closer than this the echo is meant: "round and round", "a crime concealing a crime".
MIN_REPEAT_DISTANCE = 4
# Only a distinctive word echoes: a long one that is not everyday ("something", "himself").
MIN_REPEAT_LETTERS = 7
_JUST_MEANS_NOW = frozenset({"had", "has", "have", "having", "'d", "’d"})  # noqa: RUF001
_JUST_MEANS_EXACTLY = frozenset(
    {"as", "then", "now", "in", "before", "after", "when", "so", "like", "enough", "one"}
)
_PEOPLE = frozenset({"he", "she", "they", "i", "we", "him", "her", "them"})
_PAUSE_BEFORE = re.compile(r"[,;:.!?]")
_RELATIVES = frozenset({"who", "that", "which", "whose"})
_AGENT_PRONOUNS = frozenset({"him", "her", "them", "me", "us"})
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
    long_sentences = [s for s in doc.sentences if _tangled(doc, s)]
    openings = [s.words[:2] for s in doc.sentences if _weak_opening(doc, s.words)]
    repeats = list(_repeats(doc))
    intensifiers = [w for w in doc.narration_words if w.lower in PADDING | FILLER_WORDS]
    suggestions = [
        *capped(passives),
        *capped(
            suggest(
                doc,
                "plot.long_sentence",
                s.start,
                s.end,
                f"{_spaced_words(s)} words in one sentence, clause stacked on clause with no "
                "pause: split it where the action turns.",
            )
            for s in long_sentences
        ),
        *capped(
            suggest(
                doc,
                "plot.weak_opening",
                first.start,
                second.end,
                f"Weak opening: '{doc.text[first.start : second.end]}' delays the subject; "
                "start with who acts or what happens.",
            )
            for first, second in openings
        ),
        *capped(repeats),
        *capped(s for w in intensifiers if (s := _intensifier_suggestion(doc, w)) is not None),
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


def _tangled(doc: Document, sentence: Sentence) -> bool:
    """Long, narration only (a speech is the speaker's), and unbroken: see UNBROKEN_WORDS."""
    if _spaced_words(sentence) < LONG_SENTENCE_WORDS:
        return False
    if any(doc.in_speech(w.start) for w in sentence.words):
        return False
    text = doc.text[sentence.start : sentence.end]
    run = max(len(WORD_RE.findall(part)) for part in _PAUSES.split(text))
    stacked = sum(w.lower in _SUBORDINATORS for w in sentence.words)
    if stacked >= STACKED_CLAUSES and _spaced_words(sentence) >= STACKED_WORDS:
        return True  # clause in clause, however punctuated
    return run >= UNBROKEN_WORDS or (run >= STACKED_RUN_WORDS and stacked >= STACKED_CLAUSES)


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
        # Only where who acts is known: named after "by" ("was torn up by Mara"), or a
        # hand's act in a scene with people in it ("The gun cabinet was opened"). A passive
        # whose actor is unknown or beside the point ("was founded in 1620") is good prose.
        quote = doc.text[be.start : words[j].end]
        agent = _named_agent(doc, words, j)
        if agent is not None:
            message = (
                f"Passive voice: '{quote}' puts {agent.text} after the act; start with "
                f"{agent.text} and the sentence moves."
            )
        elif _scene_act(doc, words, i, j):
            message = (
                f"Passive voice: '{quote}' hides a hand the scene has: say who did it, and "
                "the sentence moves."
            )
        else:
            continue
        yield suggest(doc, "plot.passive", be.start, words[j].end, message)


def _named_agent(doc: Document, words: Sequence[Word], participle: int) -> Word | None:
    """The person after "by" within a few words of the participle ("was torn up by
    Mara", "was seen by him"), or None: "by the wind", "by emotion" stay passive."""
    for k in range(participle + 1, min(participle + 4, len(words) - 1)):
        if words[k].lower == "by":
            agent = words[k + 1]
            person = agent.lower in _AGENT_PRONOUNS or (
                agent.text[0].isupper() and agent.lower not in STOPWORDS
            )
            return agent if person and not doc.in_speech(agent.start) else None
        if not _adjacent(doc, words[k - 1], words[k]):
            return None
    return None


def _scene_act(doc: Document, words: Sequence[Word], be: int, participle: int) -> bool:
    """A past act of a hand (HAND_ACTS) on a thing, in a sentence that is not about when
    (no year or time after it in its clause), with a person in that sentence or the one
    before: someone in the scene did it."""
    if words[be].lower not in ("was", "were") or words[participle].lower not in HAND_ACTS:
        return False
    after = words[participle + 1 : participle + 8]
    clause_end = next(
        (k for k, w in enumerate(after) if _PAUSE_BEFORE.search(doc.text, w.start - 2, w.start)),
        len(after),
    )
    if any(w.lower in WHEN_WORDS or w.text.isdigit() for w in after[:clause_end]):
        return False
    here = doc.sentence_index(words[be].start)
    start, end = doc.sentences[max(0, here - 1)].start, doc.sentences[here].end
    return any(
        w.lower in _PEOPLE or (w.text[0].isupper() and w.lower not in STOPWORDS and len(w.text) > 1)
        for w in doc.words_in(start, end)
        if not words[be].start <= w.start < words[participle].end
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
    """ "There was a man who stood at the door": an empty start whose subject waits for a
    relative clause ("A man stood at the door"). Not "There was a long silence", and not
    a cleft ("It was his sister who found it"), which puts its weight where it means to."""
    return (
        len(words) > 3
        and (words[0].lower, words[1].lower) in WEAK_OPENINGS
        and not doc.in_speech(words[0].start)
        and any(w.lower in _RELATIVES for w in words[3:9])
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
        if previous is not None and MIN_REPEAT_DISTANCE <= index - previous <= REPEAT_WINDOW_WORDS:
            yield suggest(
                doc,
                "plot.close_repeat",
                word.start,
                word.end,
                _repeat_message(word.text, index - previous),
            )


def _repeatable(word: Word) -> str | None:
    """The key a word repeats by: lower-case content words only."""
    key = word.lower
    if word.text != key or len(key) < MIN_REPEAT_LETTERS or key in STOPWORDS:
        return None
    if key in SPEECH_VERBS or key in COMMON_LONG_WORDS:
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
                        found = SuggestionFound(
                            "plot", quote, message, start=start, rule="plot.close_repeat"
                        )
                        yield k, found
                    break
                between += texts[p].narration_words
                if between >= REPEAT_WINDOW_WORDS:
                    break


def _filler(doc: Document, word: Word) -> bool:
    """ "just" as padding: not "had just come" (a moment ago) nor "just as", "just then",
    "just one" (exactly, only)."""
    i = doc.word_index(word)
    before = doc.words[i - 1].lower if i else ""
    after = doc.words[i + 1].lower if i + 1 < len(doc.words) else ""
    return before not in _JUST_MEANS_NOW and after not in _JUST_MEANS_EXACTLY


def _intensifier_suggestion(doc: Document, word: Word) -> SuggestionFound | None:
    if word.lower in FILLER_WORDS:
        if not _filler(doc, word):
            return None
        message = (
            f"'{word.text}' is usually filler: cut it unless it means 'only' or 'a moment ago'."
        )
        return suggest(doc, "plot.filler", word.start, word.end, message)
    adjective = padded_adjective(doc, word)
    if adjective is None:
        return None
    stronger = STRONGER[adjective.lower]
    return suggest(
        doc,
        "plot.intensifier",
        word.start,
        adjective.end,
        f"'{word.text}' props up '{adjective.text}': '{stronger}' says it in one word.",
        stronger,
    )
