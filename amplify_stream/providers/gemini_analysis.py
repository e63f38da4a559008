"""The analysis call's structured output, read while Gemini writes it.

Gemini streams JSON mode in pieces of the text. ``AnalysisStream`` feeds them to ijson
(yajl's C parser, event by event) and gives each suggestion and insight the moment its
object closes. Each object is checked with the same model as the whole answer; one that
fails is skipped (``FindingSkipped``), not the analysis. An answer that is not JSON, or
not the object asked for, is the provider's error, as before.

Why ijson: it knows when an object closes, so a finding goes out with its last brace.
Re-reading the text so far with a partial-JSON mode (pydantic-core's ``allow_partial``,
jiter) cannot tell a whole last object from one still being written (an optional field
may follow), so each finding would wait for the next one to begin. Measured on a 4.3 KB
answer fed 4 bytes at a time: ijson 0.6 ms in all, jiter 4.4 ms, pydantic-core 8.3 ms.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, get_args

import ijson
from pydantic import BaseModel, Field, ValidationError
from pydantic_core import from_json

from amplify_stream.errors import ProviderError
from amplify_stream.events import Focus
from amplify_stream.providers.base import FindingSkipped, InsightFound, Piece, SuggestionFound
from amplify_stream.providers.local.rules import RULES, shown

# What each focus covers, as the instructions of every analysis call tell the model.
FOCUS_GUIDE = (
    "plot (structure, stakes, pacing), character (motivation, consistency, showing rather "
    "than telling), dialogue (voice, tags, subtext), setting (place, time, sensory detail)"
)
# The standard a note must meet, the same the offline analyzer is measured against
# (make quality), and the rules it names: every analysis call's instructions carry both.
EDITOR_STANDARD = (
    "Raise only what a good fiction editor would raise on a professionally edited page; "
    "a page that needs nothing gets no notes. Never flag deliberate style: a rhetorical "
    "repeat, a long sentence that stays clear, a cleft ('It was his sister who'), a "
    "passive whose actor is unknown or beside the point, 'very' as an adjective ('the "
    "very moment'), 'seemed' for how a thing looks. Name each note's rule: one of "
    f"{', '.join(RULES)} when the note is that rule's, else model.<focus> (a "
    "contradiction, a character acting against type, 'as you know' exposition, an "
    "anachronism, an unexplained change of place, or any other note of your own)."
)


class Metric(BaseModel):
    name: str
    value: float


class GeminiSuggestion(BaseModel):
    focus: Focus
    quote: str = Field(description="An exact excerpt of the story, copied character for character.")
    message: str
    replacement: str | None = Field(default=None, description="Text that can replace the quote.")
    rule: str | None = Field(
        default=None, description="The rule from the catalogue, or model.<focus> for your own."
    )


class GeminiInsight(BaseModel):
    focus: Focus
    summary: str
    # A list of pairs: the Gemini Developer API's response schema has no free-form maps.
    metrics: list[Metric] = Field(default_factory=list)


class StoryAnalysis(BaseModel):
    """The response schema of the story's analysis call."""

    suggestions: list[GeminiSuggestion]
    insights: list[GeminiInsight]


Item = type[GeminiSuggestion] | type[GeminiInsight]


class AnalysisStream:
    """``feed`` the answer's text as it comes; get back the findings now whole (each is
    given at its closing brace, so none is left for the end). ``finish`` once the answer
    has ended, to check it. Both raise ``ProviderError`` when the answer is not the JSON
    asked for.

    ``answer``: the response schema, an object whose fields are all lists of suggestions
    or of insights (``GeminiSuggestion``, ``GeminiInsight`` or subclasses of them)."""

    def __init__(self, focus: Sequence[Focus], answer: type[BaseModel] = StoryAnalysis) -> None:
        self._focus = frozenset(focus)
        self._text: list[str] = []
        self._lists = tuple(answer.model_fields)
        # Per list: its item model, where ijson puts each item it closes, and the parser.
        self._parsers: list[tuple[Item, Any, Any]] = []
        for name, field in answer.model_fields.items():
            model = _item_model(field.annotation)
            items = ijson.sendable_list()
            path = f"{name}.item"
            self._parsers.append((model, items, ijson.items_coro(items, path, use_float=True)))

    def feed(self, text: str) -> list[Piece]:
        if not text:
            return []  # (an empty send would tell ijson the answer has ended)
        self._text.append(text)
        data = text.encode("utf-8", "replace")  # (a lone surrogate: "?")
        found: list[Piece] = []
        for model, items, parser in self._parsers:
            try:
                parser.send(data)
            except ijson.JSONError as exc:
                raise _malformed(str(exc)) from exc
            for item in items:
                found += self._piece(model, item)
            del items[:]
        return found

    def finish(self) -> None:
        for _, _, parser in self._parsers:
            try:
                parser.close()
            except ijson.JSONError as exc:
                raise _malformed(str(exc)) from exc
        try:
            answer = from_json("".join(self._text))
        except ValueError as exc:
            raise _malformed("not JSON") from exc
        if not isinstance(answer, dict) or not all(
            isinstance(answer.get(key), list) for key in self._lists
        ):
            raise _malformed("not the analysis object")

    def _piece(self, model: Item, item: Any) -> list[Piece]:
        try:
            checked = model.model_validate(item)
        except ValidationError as exc:
            kind: Literal["suggestion", "insight"] = (
                "suggestion" if issubclass(model, GeminiSuggestion) else "insight"
            )
            return [FindingSkipped(kind=kind, error=_summary(exc))]
        if checked.focus not in self._focus:
            return []
        if isinstance(checked, GeminiSuggestion):
            rule = model_rule(checked.focus, checked.rule)
            # The offline analyzer's filter: a rule turned off never reaches the writer.
            # (A note given twice on the same words is one on a live document, where the
            # pass knows the place; a story may hold the same words twice.)
            if not checked.quote or not shown(rule):
                return []
            return [
                SuggestionFound(
                    focus=checked.focus,
                    quote=checked.quote,
                    message=checked.message,
                    replacement=checked.replacement,
                    rule=rule,
                )
            ]
        metrics = {m.name: m.value for m in checked.metrics}
        return [InsightFound(focus=checked.focus, summary=checked.summary, metrics=metrics)]


def model_rule(focus: Focus, named: str | None) -> str:
    """The rule of a note the model wrote: the catalogue's rule it named, when that rule is
    of the note's focus; else ``model.<focus>``."""
    known = RULES.get(named) if named else None
    return named if known is not None and known.focus == focus and named else f"model.{focus}"


def _item_model(annotation: Any) -> Item:
    (model,) = get_args(annotation)  # list[X]
    if not issubclass(model, GeminiSuggestion | GeminiInsight):
        raise TypeError(f"an answer's lists hold suggestions or insights, not {model!r}")
    return model  # type: ignore[no-any-return]


def _malformed(why: str) -> ProviderError:
    # The first line only: ijson goes on to quote the answer around the error, and the
    # answer quotes the story.
    return ProviderError(f"Gemini returned malformed structured output: {why.splitlines()[0]}")


def _summary(exc: ValidationError) -> str:
    """Which fields were wrong and why, without their values (a story's text)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(object)'}: {e['msg']}"
        for e in exc.errors(include_url=False, include_input=False)
    )
