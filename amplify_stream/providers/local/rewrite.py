"""The rewrite: only safe, mechanical fixes that cannot change what the story says.

Each fix is an ``Edit`` of the original text. Edits never overlap, so the rewrite can be
streamed in pieces cut between edits, each piece knowing how far into the original it
has got (the provider releases suggestions as the rewrite passes them).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from amplify_stream.providers.local.document import CJK_CHARS, Document, Word
from amplify_stream.providers.local.lexicon import (
    DOUBLING_SLIPS,
    ENGLISH_MARKERS,
    KEEP_INTENSIFIER_AFTER,
    PADDING,
    STRONGER,
    alternation,
)

_EDGE = r"[\w'’\-]"  # noqa: RUF001 - a word goes on through either apostrophe
_DOUBLED = re.compile(
    rf"(?<!{_EDGE})(?P<word>{alternation(DOUBLING_SLIPS)})(?P<gap>[ \t]+)(?P=word)(?!{_EDGE})",
    re.IGNORECASE,
)
# Streamed like a model's tokens: a run of non-space, or one CJK character.
_STREAM_TOKEN = re.compile(rf"[{CJK_CHARS}]|[^\s{CJK_CHARS}]+")
# Between two words only: two spaces after a full stop are a typist's convention, not a slip.
_SPACES = re.compile(r"(?<=[^\s.!?:;\"'”’)\]]) {2,}(?=\S)")  # noqa: RUF001
# A sentence before that plainly ended: a full stop after a lower-case word that is no
# abbreviation ("Esq. of", "etc. and" go on the same sentence); "!" and "?" may be followed
# by lower case in good prose ("Poh! poh!").
_PLAIN_END = re.compile(r"(?<![\w.])[a-z]{2,}\.[\"'”’)\]]*\s+$")  # noqa: RUF001
_ABBREVIATIONS = frozenset({"etc", "viz", "cf", "vs", "ibid", "approx", "esp"})
_SPACE_BEFORE_COMMA = re.compile(r"(?<=\w)[ \t]+,(?=\s|$)")
_SPACE_BEFORE_JOINED_COMMA = re.compile(r"(?<=\w)[ \t]+,(?=[^\W\d_])")  # "howled ,and"
# A lone lower-case "i" (also in "i'm", "i'll"); not "i.e.", "(i)" or "x-i".
_LOWER_I = re.compile(
    r"(?<![\w'’.\-/@(])i(?=['’](?:m|ll|ve|d)\b|['’](?!\w)|[\s,;:!?\"”»]|\.(?!\w)|$)"  # noqa: RUF001
)
_CLOSING = "\"'”’»」"  # noqa: RUF001
_APOSTROPHES = "'’"  # noqa: RUF001
# A plain word, then a space, a mark or the end: not "www.example.com", nor "(i)" (a numeral).
_PLAIN_WORD = re.compile(
    rf"[^\W\d_]+(?:[{_APOSTROPHES}\-][^\W\d_]+)*"
    rf"(?=[\s,;:!?…{_CLOSING}]|\.(?:[\s{_CLOSING}]|$)|$)"
)
_OPENING_MARKS = "\"'“‘«「(["  # noqa: RUF001
ENGLISH_SHARE = 0.15  # share of common function words above which a text counts as English


@dataclass(frozen=True, slots=True)
class Edit:
    start: int
    end: int
    replacement: str


def rewrite_text(text: str) -> str:
    """The story with every safe fix applied."""
    return apply_edits(text, plan_edits(Document(text)))


def plan_edits(doc: Document) -> list[Edit]:
    """Every safe fix, sorted, none overlapping. Fixes that rest on English grammar
    ("i" -> "I", dropping "very") apply only to text that reads as English."""
    edits = [*_doubled_words(doc), *_space_runs(doc), *_sentence_capitals(doc)]
    if looks_english(doc):
        # Dropping "very" is a suggestion's replacement, never the rewrite's: "the very
        # moment", "a very, small person" show what it costs when it is wrong.
        edits += [*_lone_i(doc)]
    # Where fixes touch, the one starting first (then the longer) wins; the other waits.
    chosen: list[Edit] = []
    for edit in sorted(edits, key=lambda e: (e.start, -e.end)):
        if not chosen or edit.start >= chosen[-1].end:
            chosen.append(edit)
    return chosen


def apply_edits(text: str, edits: Sequence[Edit]) -> str:
    parts, cursor = [], 0
    for edit in edits:
        parts += [text[cursor : edit.start], edit.replacement]
        cursor = edit.end
    parts.append(text[cursor:])
    return "".join(parts)


def rewrite_pieces(
    text: str, edits: Sequence[Edit], words_per_piece: int = 3, max_pieces: int = 600
) -> Iterator[tuple[int, str]]:
    """The rewrite in pieces of ``words_per_piece`` words (more for a long story, so it
    never takes more than about ``max_pieces``), as ``(original_end, piece)``: the piece
    accounts for the original text up to ``original_end``. Pieces are cut only between
    edits, so joined they are exactly ``apply_edits(text, edits)``."""
    starts = [m.start() for m in _STREAM_TOKEN.finditer(text)]
    words_per_piece = max(words_per_piece, -(-len(starts) // max_pieces))
    cuts, since_cut, e = [], 0, 0
    for at in starts:
        while e < len(edits) and edits[e].end <= at:
            e += 1
        inside_edit = e < len(edits) and edits[e].start < at
        if since_cut >= words_per_piece and not inside_edit:
            cuts.append(at)
            since_cut = 0
        since_cut += 1
    start, e = 0, 0
    for end in [*cuts, len(text)]:
        parts, cursor = [], start
        while e < len(edits) and edits[e].start < end:
            parts += [text[cursor : edits[e].start], edits[e].replacement]
            cursor = edits[e].end
            e += 1
        parts.append(text[cursor:end])
        piece = "".join(parts)
        if piece:
            yield end, piece
        start = end


def looks_english(doc: Document) -> bool:
    markers = sum(1 for w in doc.words if w.lower in ENGLISH_MARKERS)
    return markers > 0 and markers >= ENGLISH_SHARE * len(doc.words)


def padded_adjective(doc: Document, word: Word) -> Word | None:
    """The adjective after ``word`` ("very", "really"...) when it has a stronger word of
    its own (``STRONGER``) that can stand in for both: narration only, not "not very",
    "the very", "a very old" (-> "a ancient"), nor at a sentence start."""
    if word.text not in PADDING or word.start in doc.opening_starts:
        return None
    if doc.in_speech(word.start):
        return None  # a character's voice is theirs
    i = doc.word_index(word)
    if i + 1 >= len(doc.words) or doc.words[i + 1].text not in STRONGER:
        return None
    adjective = doc.words[i + 1]
    gap = doc.text[word.end : adjective.start]
    if gap.strip() or "\n" in gap:
        return None
    before = doc.words[i - 1] if i else None
    if before is not None and not doc.text[before.end : word.start].strip():
        if before.lower in KEEP_INTENSIFIER_AFTER or before.lower.endswith(("n't", "n’t")):  # noqa: RUF001
            return None
        vowel = STRONGER[adjective.text][0] in "aeiou"
        if (before.lower == "a" and vowel) or (before.lower == "an" and not vowel):
            return None
    return adjective


def _doubled_words(doc: Document) -> Iterator[Edit]:
    for m in _DOUBLED.finditer(doc.text):
        yield Edit(m.start("gap"), m.end(), "")


def _space_runs(doc: Document) -> Iterator[Edit]:
    for m in _SPACE_BEFORE_COMMA.finditer(doc.text):
        yield Edit(m.start(), m.end(), ",")
    for m in _SPACE_BEFORE_JOINED_COMMA.finditer(doc.text):
        yield Edit(m.start(), m.end(), ", ")
    for m in _SPACES.finditer(doc.text):
        yield Edit(m.start(), m.end(), " ")


def _sentence_capitals(doc: Document) -> Iterator[Edit]:
    text = doc.text
    for sentence in doc.sentences:
        if not sentence.clean_start or not sentence.words:
            continue
        first = sentence.words[0]
        lead = text[sentence.start : first.start]
        plain = _PLAIN_WORD.match(text, first.start)
        # Only a plain lower-case word: not "iPhone", "www.example.com" or "3rd".
        if plain is None or plain.group() != plain.group().lower():
            continue
        if not _after_plain_end(text, sentence.start):
            continue
        letter = text[first.start]
        capital = letter.upper()
        if all(ch in _OPENING_MARKS for ch in lead) and capital != letter and len(capital) == 1:
            yield Edit(first.start, first.start + 1, capital)


def _after_plain_end(text: str, start: int) -> bool:
    """Whether what comes before ``start`` is the start of the text or a sentence that
    plainly ended (``_PLAIN_END``)."""
    if not text[:start].strip():
        return True
    before = _PLAIN_END.search(text, max(0, start - 40), start)
    return before is not None and before.group().split(".")[0] not in _ABBREVIATIONS


def _lone_i(doc: Document) -> Iterator[Edit]:
    for m in _LOWER_I.finditer(doc.text):
        yield Edit(m.start(), m.end(), "I")
