"""The port of a live document's analysis pass, and how a process picks its backend.

A pass reads the document's stale paragraphs, settles its live set on the document
(``OpenPass``: a suggestion may go live, and to ``emit``, the moment it is found; the rest,
retractions and paragraphs marked read, is one synchronous step at the end, so no edit can
fall between the reading and the settling) and says what it found. Cancelling the task
that runs ``analyze`` stops the pass and its provider work (for Gemini, its connections):
the document keeps what was emitted, and nothing else of the pass.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from amplify_stream.config import Settings
from amplify_stream.documents.local_pass import PassFindings, local_pass
from amplify_stream.documents.state import DocumentState, LiveSuggestion

# Told of each suggestion a pass adds to the live set before the pass ends (a provider
# that streams sends it on at once); the pass's result lists the rest.
Emit = Callable[[LiveSuggestion], None]


class DocumentAnalyzer(Protocol):
    name: str

    async def analyze(self, doc: DocumentState, emit: Emit) -> PassFindings:
        """Read ``doc``'s stale paragraphs and settle its live set. Suggestions passed to
        ``emit`` are live from then on (and are not in the result's ``added``)."""
        ...

    async def aclose(self) -> None: ...


class LocalAnalyzer:
    """The offline analyzer, paragraph by paragraph through its content cache: a pass
    on one changed paragraph takes a millisecond or two, so it runs inline."""

    name = "local"

    async def analyze(self, doc: DocumentState, emit: Emit) -> PassFindings:
        await asyncio.sleep(0)  # a pass superseded before it began does nothing
        return local_pass(doc)

    async def aclose(self) -> None:
        return None


def create_document_analyzer(settings: Settings) -> DocumentAnalyzer:
    if settings.enhancement_provider_name == "gemini":
        from amplify_stream.documents.gemini_pass import GeminiAnalyzer

        return GeminiAnalyzer(settings)
    return LocalAnalyzer()
