"""One pass over a story: the suggestions and insights of the requested focuses, and the
rewrite cut into pieces. Pure and deterministic; the provider runs it off the event loop."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from amplify_stream.events import Focus
from amplify_stream.providers.base import InsightFound, SuggestionFound
from amplify_stream.providers.local.character import analyze_character
from amplify_stream.providers.local.dialogue import analyze_dialogue
from amplify_stream.providers.local.document import WORD_RE, Document
from amplify_stream.providers.local.findings import FocusReport
from amplify_stream.providers.local.plot import analyze_plot
from amplify_stream.providers.local.rewrite import apply_edits, plan_edits, rewrite_pieces
from amplify_stream.providers.local.rules import shown
from amplify_stream.providers.local.setting import analyze_setting

ANALYZERS: MappingProxyType[Focus, Callable[[Document], FocusReport]] = MappingProxyType(
    {
        "plot": analyze_plot,
        "character": analyze_character,
        "dialogue": analyze_dialogue,
        "setting": analyze_setting,
    }
)


@dataclass(frozen=True, slots=True)
class Analysis:
    # Ordered by where each ends in the text: the order the rewrite passes them.
    suggestions: tuple[SuggestionFound, ...]
    insights: tuple[InsightFound, ...]
    # The rewrite as (original_end, piece); the submitted text when no rewrite was asked.
    pieces: tuple[tuple[int, str], ...]
    rewrite: str | None
    input_tokens: int
    output_tokens: int


def analyze(text: str, focus: Sequence[Focus], rewrite: bool) -> Analysis:
    doc = Document(text)
    focuses = tuple(dict.fromkeys(focus))  # each once, in the order asked
    reports = [ANALYZERS[f](doc) for f in focuses]
    found = (s for r in reports for s in r.suggestions if shown(s.rule))
    suggestions = in_reading_order(found, focuses)
    insights = tuple(report.insight for report in reports)
    rewritten = None
    edits = plan_edits(doc) if rewrite else []
    # Without a rewrite, the text as submitted, cut the same way: the pace it is read at.
    pieces = tuple(rewrite_pieces(text, edits))
    if rewrite:
        rewritten = apply_edits(text, edits)
    written = [rewritten or "", *(s.message for s in suggestions), *(i.summary for i in insights)]
    return Analysis(
        suggestions=tuple(suggestions),
        insights=insights,
        pieces=pieces,
        rewrite=rewritten,
        input_tokens=approx_tokens(text),
        output_tokens=sum(approx_tokens(t) for t in written),
    )


def in_reading_order(
    suggestions: Iterable[SuggestionFound], focuses: Sequence[Focus]
) -> list[SuggestionFound]:
    """By where each ends, then starts, then by focus as asked (stable otherwise)."""
    return sorted(suggestions, key=reading_key(focuses))


def reading_key(focuses: Sequence[Focus]) -> Callable[[SuggestionFound], tuple[int, int, int]]:
    order = {f: i for i, f in enumerate(focuses)}
    return lambda s: (suggestion_end(s), s.start or 0, order[s.focus])


def suggestion_end(suggestion: SuggestionFound) -> int:
    return (suggestion.start or 0) + len(suggestion.quote)


def approx_tokens(text: str) -> int:
    """About 4 tokens for every 3 words (the usual ratio for English with a BPE tokenizer;
    a CJK character counts as a word). An estimate: nothing is billed on it."""
    words = len(WORD_RE.findall(text))
    return -(-words * 4 // 3)
