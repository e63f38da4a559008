"""The port of a live document's analysis pass (its backends: ``local_pass.py``,
``gemini_pass.py``; ``create_document_analyzer`` in ``__init__`` picks one).

A pass reads the document's stale paragraphs, settles its live set on the document
(``OpenPass``: a suggestion may go live, and to ``emit``, the moment it is found; the rest,
retractions and paragraphs marked read, is one synchronous step at the end, so no edit can
fall between the reading and the settling) and says what it found. Cancelling the task
that runs ``analyze`` stops the pass and its provider work (for Gemini, its connections):
the document keeps what was emitted, and nothing else of the pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from amplify_stream.documents.state import DocumentState, LiveSuggestion, PassResult
from amplify_stream.providers.base import InsightFound

# Told of each suggestion a pass adds to the live set before the pass ends (a provider
# that streams sends it on at once); the pass's result lists the rest.
Emit = Callable[[LiveSuggestion], None]


@dataclass(frozen=True, slots=True)
class PassFindings:
    result: PassResult
    insights: tuple[InsightFound, ...]
    # Suggestions the provider wrote but the pass left out (against the schema, or
    # quoting what the paragraph does not hold): logged and counted, never sent.
    skipped: int = 0


class DocumentAnalyzer(Protocol):
    name: str

    @property
    def model(self) -> str | None:
        """The model that reads the paragraphs, where one does."""
        ...

    async def analyze(self, doc: DocumentState, emit: Emit) -> PassFindings:
        """Read ``doc``'s stale paragraphs and settle its live set. Suggestions passed to
        ``emit`` are live from then on (and are not in the result's ``added``)."""
        ...

    async def aclose(self) -> None: ...
