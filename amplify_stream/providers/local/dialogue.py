"""Dialogue: tags with adverbs, said-bookisms, long unbroken speeches, how much is spoken."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from amplify_stream.providers.base import InsightFound, SuggestionFound
from amplify_stream.providers.local.document import Document, Paragraph, Speech, Word
from amplify_stream.providers.local.findings import FocusReport, capped, count, share, suggest
from amplify_stream.providers.local.lexicon import (
    ACTION_TAGS,
    NOT_ADVERBS,
    NOT_NAMES,
    SAID_BOOKISMS,
    SPEECH_VERBS,
    STOPWORDS,
)

# A speech this long without a break is a monologue (a two-paragraph reply in a novel of
# 1900 is often 60 words: measured on the clean corpus).
LONG_SPEECH_WORDS = 80
SCENE_PARAGRAPHS = 8  # the paragraphs before a line that count as its scene
_PRONOUNS = frozenset({"he", "she", "they", "we", "you", "it"})
# A tag sits within this many characters of its speech, before the next punctuation.
_TAG_REACH = 80
# A line break within a paragraph is a wrap (hard-wrapped prose): only a blank line stops.
_TAG_STOP = re.compile(r'[.!?;:,"“”«»「」‘’]|\n[^\S\n]*\n')  # noqa: RUF001
_OPEN_ENDINGS = ",!?…—–-"  # noqa: RUF001 - dashes attribute the speech to what follows


@dataclass(frozen=True, slots=True)
class Tag:
    """A dialogue tag: "she said softly", "Tom hissed"."""

    words: tuple[Word, ...]
    verb: int  # index of the speech verb in words
    question: bool  # the speech it attributes asks something

    def adverb(self) -> int | None:
        """Index of the manner adverb by the verb: "said softly", "softly said", and past
        the speaker: "said Tom softly" (but not "said and quickly left")."""
        candidates = [self.verb + 1, self.verb - 1]
        if self.verb + 1 < len(self.words) and _is_speaker(self.words[self.verb + 1]):
            candidates.insert(1, self.verb + 2)
        for i in candidates:
            if 0 <= i < len(self.words) and _is_manner_adverb(self.words[i]):
                return i
        return None


@dataclass(frozen=True, slots=True)
class DialogueTally:
    """What the dialogue insight counts in a text; tallies add up (``summed``)."""

    words: int
    lines: int
    spoken: int  # words inside speech
    adverb_tags: int
    bookisms: int
    long_speeches: int


def analyze_dialogue(doc: Document) -> FocusReport:
    suggestions, tally = find_dialogue(doc)
    return FocusReport(suggestions, dialogue_insight(tally))


def find_dialogue(doc: Document) -> tuple[tuple[SuggestionFound, ...], DialogueTally]:
    """The dialogue suggestions of ``doc`` (each rule capped) and its tally."""
    # A tag between two speeches ('"Go," she said, "now."') attributes both: count it once.
    by_verb: dict[int, Tag] = {}
    for speech in doc.speeches:
        for tag in _tags(doc, speech):
            by_verb.setdefault(tag.words[tag.verb].start, tag)
    tags = list(by_verb.values())
    adverbs = [s for tag in tags if (s := _adverb_suggestion(doc, tag)) is not None]
    bookisms = [s for tag in tags if (s := _bookism_suggestion(doc, tag)) is not None]
    long_speeches = [s for s in doc.speeches if len(s.words) > LONG_SPEECH_WORDS]
    unattributed = unattributed_lines(doc)
    suggestions = [
        *capped(adverbs),
        *capped(bookisms),
        *capped(
            suggest(
                doc,
                "dialogue.long_speech",
                s.start,
                s.end,
                f"{len(s.words)} words of speech without a break: a beat of action or a "
                "reply lets the scene breathe and reminds the reader who is talking.",
            )
            for s in long_speeches
        ),
        *capped(
            suggest(
                doc,
                "dialogue.unattributed",
                s.start,
                s.end,
                UNATTRIBUTED_MESSAGE,
            )
            for s in unattributed
        ),
    ]
    tally = DialogueTally(
        words=len(doc.words),
        lines=len(doc.speeches),
        spoken=sum(len(s.words) for s in doc.speeches),
        adverb_tags=len(adverbs),
        bookisms=len(bookisms),
        long_speeches=len(long_speeches),
    )
    return tuple(suggestions), tally


@dataclass(frozen=True, slots=True)
class SpeechParagraph:
    """What the rule on unattributed lines needs of one paragraph."""

    alone: tuple[int, int] | None  # the span of the speech that is the whole paragraph
    spoken: bool  # it holds some speech
    names: frozenset[str]  # the names in its narration
    quote: str = ""  # that speech, when it is the whole paragraph


def unattributed_lines(doc: Document) -> list[Speech]:
    facts = [speech_paragraph(doc, p) for p in doc.paragraphs]
    by_start = {s.start: s for s in doc.speeches}
    return [by_start[alone[0]] for i in unattributed(facts) if (alone := facts[i].alone)]


def unattributed(paragraphs: Sequence[SpeechParagraph | None]) -> list[int]:
    """The paragraphs (indices; None for a blank one, which does not count) that are a
    line standing alone after a speech whose paragraph names nobody ("he said", or no
    tag), where the speeches of the paragraphs before come with three names or more: the
    alternation of two speakers no longer tells who speaks."""
    found = []
    seen: list[SpeechParagraph] = []
    for i, p in enumerate(paragraphs):
        if p is None:
            continue
        if p.alone is not None and seen and seen[-1].spoken and not seen[-1].names:
            scene = seen[-SCENE_PARAGRAPHS:]
            if len({name for q in scene if q.spoken for name in q.names}) >= 3:
                found.append(i)
        seen.append(p)
    return found


def speech_paragraph(doc: Document, p: Paragraph) -> SpeechParagraph:
    speeches = [s for s in doc.speeches if p.start <= s.start < p.end]
    whole = len(speeches) == 1 and (speeches[0].start, speeches[0].end) == (p.start, p.end)
    names = frozenset(
        w.text
        for w in doc.words_in(p.start, p.end)
        if w.text[0].isupper()
        and len(w.text) > 1
        and w.lower not in STOPWORDS
        and w.lower not in NOT_NAMES
        and not doc.in_speech(w.start)
    )
    if not whole:
        return SpeechParagraph(None, bool(speeches), names)
    return SpeechParagraph((p.start, p.end), True, names, doc.text[p.start : p.end])


UNATTRIBUTED_MESSAGE = (
    "Whose line is this? With three or more people in the scene, a line with no tag after "
    "one tagged only by a pronoun leaves the reader counting back."
)


def dialogue_insight(tally: DialogueTally) -> InsightFound:
    spoken, lines = tally.spoken, tally.lines
    metrics = {
        "dialogue_ratio": share(spoken, tally.words),
        "dialogue_lines": float(lines),
        "dialogue_words": float(spoken),
        "avg_line_words": round(spoken / lines, 1) if lines else 0.0,
        "adverb_tags": float(tally.adverb_tags),
        "said_bookisms": float(tally.bookisms),
        "long_speeches": float(tally.long_speeches),
    }
    if not lines:
        summary = (
            "No dialogue: the story is all narration; a few lines of speech would let the "
            "characters reveal themselves."
        )
    else:
        summary = (
            f"{count(lines, 'line')} of dialogue, {metrics['dialogue_ratio']:.0%} of the words; "
            f"{count(tally.adverb_tags, 'adverb tag')}, "
            f"{count(tally.bookisms, 'said-bookism')}, "
            f"{count(tally.long_speeches, 'long speech', 'long speeches')}."
        )
    return InsightFound("dialogue", summary, metrics)


def _tags(doc: Document, speech: Speech) -> list[Tag]:
    text, found = doc.text, []
    inner_end = speech.end - 1 if speech.closed else speech.end
    inner = text[speech.start + 1 : inner_end].rstrip()
    question = inner.endswith("?")
    if speech.closed and inner and inner[-1] in _OPEN_ENDINGS:
        # '"Go," she said softly.'
        reach = min(len(text), speech.end + _TAG_REACH)
        stop = _TAG_STOP.search(text, speech.end, reach)
        tag = _tag(doc.words_in(speech.end, stop.start() if stop else reach)[:4], question)
        if tag is not None:
            found.append(tag)
    lead_end = speech.start
    while lead_end > 0 and text[lead_end - 1].isspace():
        lead_end -= 1
    if lead_end and text[lead_end - 1] in ",:":
        # 'She said softly, "Go."'
        start, floor = lead_end - 1, max(0, lead_end - 1 - _TAG_REACH)
        while start > floor and not _TAG_STOP.match(text, start - 1):
            start -= 1
        tag = _tag(doc.words_in(start, lead_end - 1)[-4:], question)
        if tag is not None:
            found.append(tag)
    return found


def _tag(words: tuple[Word, ...], question: bool) -> Tag | None:
    for i, word in enumerate(words):
        if word.lower in SPEECH_VERBS or word.lower in SAID_BOOKISMS:
            return Tag(words, i, question)
    return None


def _is_speaker(word: Word) -> bool:
    return word.text[0].isupper() or word.lower in _PRONOUNS


def _is_manner_adverb(word: Word) -> bool:
    lower = word.lower
    return (
        len(lower) >= 5 and lower.endswith("ly") and lower not in NOT_ADVERBS and lower == word.text
    )


def _adverb_suggestion(doc: Document, tag: Tag) -> SuggestionFound | None:
    adverb_at = tag.adverb()
    if adverb_at is None:
        return None
    verb, adverb = tag.words[tag.verb], tag.words[adverb_at]
    if adverb_at > tag.verb:  # "said Tom softly" -> "said Tom"
        start, end, kept_end = verb.start, adverb.end, tag.words[adverb_at - 1].end
        replacement = doc.text[start:kept_end]
    else:  # "softly said" -> "said"
        start, end = adverb.start, verb.end
        replacement = verb.text
    return suggest(
        doc,
        "dialogue.adverb_tag",
        start,
        end,
        f"'{adverb.text}' tells how the line is said; let the words, or a beat of action, "
        f"carry the tone: '{replacement}'.",
        replacement,
    )


def _bookism_suggestion(doc: Document, tag: Tag) -> SuggestionFound | None:
    verb = tag.words[tag.verb]
    if verb.lower not in SAID_BOOKISMS:
        return None
    plain = "asked" if tag.question else "said"
    if verb.text[0].isupper():
        plain = plain.capitalize()
    if verb.lower in ACTION_TAGS:
        message = (
            f"'{verb.text}' is an action, not a way of speaking: use '{plain}', or give the "
            "action its own sentence as a beat."
        )
    else:
        message = (
            f"Said-bookism: '{verb.text}' draws the eye to the tag; '{plain}' disappears and "
            "leaves the line to do the work."
        )
    return suggest(doc, "dialogue.said_bookism", verb.start, verb.end, message, plain)
