"""The fake Gemini's "model": deterministic answers that read like a careful line editor's.

Prompts are read the way ``GeminiProvider`` writes them: the story between ``<story>``
tags and a ``Focus: plot, dialogue`` line; or as a live document's pass writes them
(``documents/gemini_pass.py``): the whole document for context, then the one line to
review between ``<paragraph>`` tags, last, which alone is analysed. Anything else falls
back to the whole prompt and all four focuses, so any client gets a plausible answer.
Every quote is a slice of the story found by a regular expression, so it is an exact
excerpt by construction.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from amplify_stream.events import ALL_FOCUS, Focus


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STORY = re.compile(r"<story>\n(.*)\n</story>|<story>(.*)</story>", re.DOTALL)
# The paragraph under review closes the prompt (so one typed inside the document is not it).
_PARAGRAPH = re.compile(r"<paragraph>\n([^\n]*)\n</paragraph>\s*\Z")
_FOCUS_LINE = re.compile(r"^Focus:\s*(.+)$", re.MULTILINE)

# Words ending in -ly that are not manner adverbs: never cut after a dialogue tag.
_NOT_ADVERBS = _words(
    "only early likely lovely ugly holy silly friendly lonely daily family reply fly rely "
    "apply supply ally belly jelly rally emily molly lily holly sally billy kelly"
)
_TAG_ADVERB = re.compile(
    r"\b(?:said|asked|replied|whispered|shouted|muttered|called|cried|answered)"
    r" ([a-z]+ly)\b"
)
_INTENSIFIER = re.compile(r"\b(?:very|really) ([a-z]+)\b")
_TOLD_FEELING = re.compile(
    r"\b(?:felt|seemed|looked|was|were) (?:very |so )?"
    r"(?:angry|sad|happy|afraid|scared|nervous|tired|excited|worried|lonely|jealous|"
    r"furious|anxious|upset|ashamed|confused|relieved)\b"
)
_SUDDENLY = re.compile(r"\b[Ss]uddenly\b")
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+[\"'”\u2019)]*|$)", re.MULTILINE)
_QUOTED = re.compile(r"\"[^\"\n]+\"|“[^”\n]+”")
_NAME = re.compile(r"(?<=[a-z,;] )[A-Z][a-z]+\b")
_SENSES: Mapping[str, frozenset[str]] = {
    "sight": _words("light dark shadow shone glow grey gray red blue bright dim saw"),
    "sound": _words("sound noise whisper hum creak rang echo silence loud quiet heard"),
    "smell": _words("smell scent smoke stink perfume odor odour reek"),
    "touch": _words("cold warm rough smooth wet damp soft sharp heat ice"),
    "taste": _words("taste bitter sweet salt sour"),
}
LONG_SENTENCE_WORDS = 30
MAX_SUGGESTIONS = 20


@dataclass(frozen=True, slots=True)
class Prompt:
    story: str
    focus: tuple[Focus, ...]


def read_prompt(text: str) -> Prompt:
    """The story (or paragraph) and the focuses a prompt asks about."""
    story_match = _PARAGRAPH.search(text) or _STORY.search(text)
    story = text
    if story_match:
        story = story_match.group(1) if story_match.group(1) is not None else story_match.group(2)
    focus: tuple[Focus, ...] = ALL_FOCUS
    if focus_match := _FOCUS_LINE.search(text[: story_match.start()] if story_match else text):
        wanted = {f.strip().lower() for f in focus_match.group(1).split(",")}
        focus = tuple(f for f in ALL_FOCUS if f in wanted) or ALL_FOCUS
    return Prompt(story=story, focus=focus)


def count_tokens(text: str) -> int:
    """Roughly what Gemini's tokenizer gives for English: four characters a token."""
    return count_chars_tokens(len(text))


def count_chars_tokens(chars: int) -> int:
    """``count_tokens`` of a text of ``chars`` characters."""
    return math.ceil(chars / 4)


def stream_tokens(text: str) -> list[str]:
    """Word-sized pieces (each word with the whitespace after it); joined they are ``text``."""
    return re.findall(r"\S+\s*|\s+", text)


def rewrite(story: str) -> str:
    """A light, safe line edit: what the analysis suggests, applied where it is mechanical."""

    def drop_adverb(match: re.Match[str]) -> str:
        if match.group(1) in _NOT_ADVERBS:
            return match.group(0)
        return match.group(0)[: match.start(1) - match.start(0) - 1]

    text = _TAG_ADVERB.sub(drop_adverb, story)
    text = re.sub(r"\b(?:very|really) (?=[a-z])", "", text)
    text = re.sub(r"(?<=\S) {2,}(?=\S)", " ", text)
    text = re.sub(r"(?<![\w'\u2019])i(?![\w'\u2019])", "I", text)
    return re.sub(r"([!?])\1+", r"\1", text)


def analyse(prompt: Prompt) -> dict[str, Any]:
    """Suggestions quoting the story exactly, and one insight per focus asked for."""
    wanted = [(at, s) for at, s in _suggestions(prompt.story) if s["focus"] in prompt.focus]
    found = sorted(wanted, key=lambda pair: pair[0])
    return {
        "suggestions": [s for _, s in found[:MAX_SUGGESTIONS]],
        "insights": [_INSIGHTS[f](prompt.story) for f in prompt.focus],
    }


def _suggestions(story: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for m in _TAG_ADVERB.finditer(story):
        if m.group(1) not in _NOT_ADVERBS:
            tag = m.group(0)[: m.start(1) - m.start(0) - 1]
            yield _suggestion(
                "dialogue",
                m,
                f"'{m.group(1)}' tells the reader how the line sounds; let the words "
                "of the line carry the tone.",
                tag,
                rule="dialogue.adverb_tag",
            )
    for m in _INTENSIFIER.finditer(story):
        yield _suggestion(
            "setting",
            m,
            f"An intensifier weakens the description; a sharper word than '{m.group(1)}' "
            "or a concrete detail does more.",
            m.group(1),
        )
    for m in _TOLD_FEELING.finditer(story):
        yield _suggestion(
            "character",
            m,
            "This names the feeling; show it through a gesture, an action or a thought.",
            rule="character.telling",
        )
    for m in _SUDDENLY.finditer(story):
        yield _suggestion(
            "plot",
            m,
            "'Suddenly' announces a surprise instead of creating it; cut it.",
            rule="model.plot",
        )
    for m in _SENTENCE.finditer(story):
        words = len(m.group(0).split())
        if words > LONG_SENTENCE_WORDS:
            yield _suggestion(
                "plot",
                m,
                f"This sentence runs {words} words; splitting it keeps the pace moving.",
                quote=m.group(0).strip(),
                rule="plot.long_sentence",
            )


def _suggestion(
    focus: Focus,
    match: re.Match[str],
    message: str,
    replacement: str | None = None,
    quote: str | None = None,
    rule: str | None = None,
) -> tuple[int, dict[str, Any]]:
    """A note as the model writes it; ``rule`` as it names it (left out, as the model may:
    the intensifier's, which the service then calls ``model.setting``)."""
    found: dict[str, Any] = {"focus": focus, "quote": quote or match.group(0), "message": message}
    if replacement is not None:
        found["replacement"] = replacement
    if rule is not None:
        found["rule"] = rule
    return match.start(), found


def _sentences(story: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.findall(story) if s.strip()]


def _plot(story: str) -> dict[str, Any]:
    sentences = _sentences(story)
    words = len(story.split())
    paragraphs = len([p for p in re.split(r"\n\s*\n", story) if p.strip()])
    average = words / len(sentences) if sentences else 0.0
    long = sum(1 for s in sentences if len(s.split()) > LONG_SENTENCE_WORDS)
    pace = "brisk" if average < 12 else "measured" if average < 20 else "slow"
    return _insight(
        "plot",
        f"{len(sentences)} sentences in {paragraphs} paragraph(s), averaging {average:.1f} "
        f"words: a {pace} pace" + (f"; {long} sentence(s) run long." if long else "."),
        sentences=len(sentences),
        paragraphs=paragraphs,
        words=words,
        avg_sentence_words=round(average, 1),
        long_sentences=long,
    )


def _character(story: str) -> dict[str, Any]:
    names = Counter(_NAME.findall(story))
    told = len(_TOLD_FEELING.findall(story))
    if names:
        cast = ", ".join(f"{n} ({c})" for n, c in names.most_common(5))
        summary = f"Named on the page: {cast}."
    else:
        summary = "No character is named mid-sentence; the cast is carried by pronouns."
    if told:
        summary += f" Feelings are named outright {told} time(s)."
    return _insight(
        "character",
        summary,
        named_characters=len(names),
        name_mentions=sum(names.values()),
        told_feelings=told,
    )


def _dialogue(story: str) -> dict[str, Any]:
    lines = _QUOTED.findall(story)
    ratio = sum(len(q) for q in lines) / len(story) if story else 0.0
    adverbs = sum(1 for m in _TAG_ADVERB.finditer(story) if m.group(1) not in _NOT_ADVERBS)
    summary = (
        f"{len(lines)} line(s) of dialogue, {ratio:.0%} of the text"
        if lines
        else "No dialogue yet: the story is all narration"
    )
    summary += f"; {adverbs} tag(s) lean on adverbs." if adverbs else "."
    return _insight(
        "dialogue",
        summary,
        lines=len(lines),
        dialogue_ratio=round(ratio, 3),
        tag_adverbs=adverbs,
    )


def _setting(story: str) -> dict[str, Any]:
    words = Counter(re.findall(r"[a-z]+", story.lower()))
    per_sense = {s: sum(words[w] for w in vocab) for s, vocab in _SENSES.items()}
    used = [s for s, n in per_sense.items() if n]
    missing = [s for s, n in per_sense.items() if not n]
    summary = f"Senses on the page: {', '.join(used)}." if used else "No sensory detail yet."
    if used and missing:
        summary += f" Absent: {', '.join(missing)}."
    return _insight(
        "setting",
        summary,
        sensory_words=sum(per_sense.values()),
        senses_used=len(used),
    )


def _insight(focus: Focus, summary: str, **metrics: float) -> dict[str, Any]:
    return {"focus": focus, "summary": summary, "metrics": metrics}


_INSIGHTS = {"plot": _plot, "character": _character, "dialogue": _dialogue, "setting": _setting}


def conform(value: Any, schema: Mapping[str, Any] | None, root: Mapping[str, Any]) -> Any:
    """``value`` cut to the shape ``schema`` asks for (a Gemini Schema or a JSON Schema):
    unknown properties dropped, a metrics mapping turned into ``[{name, value}]`` when the
    schema wants a list. Enough for the fake to answer "JSON matching the schema"."""
    if not schema:
        return value
    if ref := schema.get("$ref"):
        schema = root.get("$defs", {}).get(str(ref).rsplit("/", 1)[-1], {})
    kind = str(schema.get("type", "")).lower()
    if kind == "object" and isinstance(value, dict):
        props: Mapping[str, Any] = schema.get("properties") or {}
        if not props:
            return value
        return {k: conform(v, props[k], root) for k, v in value.items() if k in props}
    if kind == "array" and isinstance(value, dict):
        value = [{"name": k, "value": v} for k, v in value.items()]
    if kind == "array" and isinstance(value, list):
        return [conform(v, schema.get("items"), root) for v in value]
    return value
