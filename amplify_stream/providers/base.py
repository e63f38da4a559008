"""The enhancement provider port.

A provider turns a story into a stream of pieces: rewrite text as it is produced,
suggestions (each quoting the submitted text exactly) and per-focus insights each as soon
as it is whole, interleaved with the rewrite, and the token usage at the end. The
enhancer turns pieces into events; it finds each quote's span itself
(``amplify_stream.text.spans``), so providers never compute offsets.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from amplify_stream.events import Focus


@dataclass(frozen=True, slots=True)
class EnhancementRequest:
    story_id: str
    text: str
    focus: Sequence[Focus]
    rewrite: bool = True
    title: str | None = None


@dataclass(frozen=True, slots=True)
class RewriteDelta:
    """The next piece of the rewritten story."""

    text: str


@dataclass(frozen=True, slots=True)
class SuggestionFound:
    focus: Focus
    quote: str  # an excerpt of the submitted text, as the provider quoted it
    message: str
    replacement: str | None = None
    # Where the provider knows the exact offset (the local analyzer does), the enhancer
    # uses it instead of searching for the quote: a quote may occur more than once.
    start: int | None = None
    # The rule that found it (``plot.passive``...: the offline analyzer's catalogue,
    # ``providers/local/rules.py``), or None where the provider names none.
    rule: str | None = None


@dataclass(frozen=True, slots=True)
class InsightFound:
    focus: Focus
    summary: str
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FindingSkipped:
    """A suggestion or insight the provider wrote but not as the schema says: left out
    (the rest of the analysis goes on), counted and logged by the enhancer."""

    kind: Literal["suggestion", "insight"]
    error: str  # which fields and why, never the story's text


@dataclass(frozen=True, slots=True)
class UsageReport:
    input_tokens: int
    output_tokens: int


Piece = RewriteDelta | SuggestionFound | InsightFound | FindingSkipped | UsageReport


class EnhancementProvider(abc.ABC):
    """Raise ``errors.ProviderUnavailable`` when the provider cannot be reached or is
    overloaded (after its retries), ``errors.ProviderError`` when it fails mid-way."""

    name: str
    model: str

    @abc.abstractmethod
    def stream(self, request: EnhancementRequest) -> AsyncIterator[Piece]:
        """Yield pieces as they are produced. Cancelling the consuming task stops the work
        and releases its connection."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release long-lived resources (HTTP sessions)."""
