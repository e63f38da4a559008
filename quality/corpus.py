"""The committed corpus: clean excerpts of edited fiction, and drafts whose planted
problems and traps are marked inline (``[[kind|words]]``, ``[[trap:kind|words]]``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from amplify_stream.events import Focus

CORPUS = Path(__file__).resolve().parent / "corpus"
_MARK = re.compile(r"\[\[(trap:)?([a-z_]+)\|([^\]]+)\]\]")
_WORD = re.compile(r"\w+(?:['’]\w+)*")  # noqa: RUF001 - both apostrophes

# The focus each planted kind belongs to: a finding of that focus overlapping the span
# finds it.
KIND_FOCUS: MappingProxyType[str, Focus] = MappingProxyType(
    {
        "filter_word": "character",
        "telling_emotion": "character",
        "lookalike_names": "character",
        "out_of_character": "character",
        "adverb_tag": "dialogue",
        "said_bookism": "dialogue",
        "overlong_speech": "dialogue",
        "unattributed_line": "dialogue",
        "as_you_know": "dialogue",
        "intensifier": "plot",
        "needless_passive": "plot",
        "near_repeat": "plot",
        "tangled_sentence": "plot",
        "contradiction": "plot",
        "anachronism": "plot",
        "no_time_or_place": "setting",
        "unexplained_place_change": "setting",
    }
)
# The kinds that need reading comprehension: Gemini's, reported but not held to.
COMPREHENSION = frozenset(
    {"contradiction", "out_of_character", "as_you_know", "anachronism", "unexplained_place_change"}
)


@dataclass(frozen=True, slots=True)
class Mark:
    kind: str
    start: int
    end: int
    trap: bool

    @property
    def focus(self) -> Focus | None:
        return None if self.trap else KIND_FOCUS[self.kind]


@dataclass(frozen=True, slots=True)
class Text:
    name: str
    text: str
    marks: tuple[Mark, ...] = ()

    @property
    def words(self) -> int:
        return count_words(self.text)


def count_words(text: str) -> int:
    return len(_WORD.findall(text))


def parse_draft(name: str, marked: str) -> Text:
    """The draft's text without its marks, and each mark's exact span in it."""
    parts: list[str] = []
    marks: list[Mark] = []
    at = length = 0
    for m in _MARK.finditer(marked):
        parts.append(marked[at : m.start()])
        length += m.start() - at
        trap, kind, words = m.group(1) is not None, m.group(2), m.group(3)
        if not trap and kind not in KIND_FOCUS:
            raise ValueError(f"{name}: unknown kind {kind!r}")
        marks.append(Mark(kind, length, length + len(words), trap))
        parts.append(words)
        length += len(words)
        at = m.end()
    parts.append(marked[at:])
    text = "".join(parts)
    if "[[" in text or "]]" in text:
        raise ValueError(f"{name}: a mark that does not parse")
    return Text(name, text, tuple(marks))


def clean_texts() -> list[Text]:
    return [Text(p.stem, p.read_text()) for p in sorted((CORPUS / "clean").glob("*.txt"))]


def drafts() -> list[Text]:
    return [
        parse_draft(p.stem, p.read_text())
        for p in sorted((CORPUS / "drafts").glob("*.md"))
        if p.stem != "README"
    ]
