"""An analysis pass of a live document with the ``local`` provider: the stale paragraphs
read (each through the per-process paragraph cache, so a paragraph seen before, in this
document or another, costs a lookup), the document-level findings recombined from every
paragraph's cached facts, and the live set settled."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from amplify_stream.documents.analyzers import Emit, PassFindings
from amplify_stream.documents.state import DocumentState, Finding
from amplify_stream.events import Focus
from amplify_stream.providers.base import InsightFound, SuggestionFound
from amplify_stream.providers.local.paragraphs import (
    DocumentFindings,
    ParagraphFacts,
    cached_paragraph,
    document_findings,
)
from amplify_stream.providers.local.rules import shown


class LocalAnalyzer:
    """The offline analyzer, paragraph by paragraph through its content cache: a pass
    on one changed paragraph takes a millisecond or two, so it runs inline."""

    name = "local"

    async def analyze(self, doc: DocumentState, emit: Emit) -> PassFindings:
        await asyncio.sleep(0)  # a pass superseded before it began does nothing
        return local_pass(doc)

    async def aclose(self) -> None:
        return None


def local_pass(doc: DocumentState) -> PassFindings:
    stale = doc.stale()
    facts = paragraph_facts(doc.paragraphs, doc.focus)
    whole = document_findings(facts, doc.focus)
    result = doc.settle(
        {i: [_finding(s) for s in facts[i].suggestions if shown(s.rule)] for i in stale},
        across(whole),
    )
    return PassFindings(result, whole.insights)


def insights_of(doc: DocumentState) -> tuple[InsightFound, ...]:
    """The document's insights now, from every paragraph's cached facts (what a pass of
    any provider reports; a reopen tells them without a pass)."""
    return document_findings(paragraph_facts(doc.paragraphs, doc.focus), doc.focus).insights


def paragraph_facts(paragraphs: Sequence[str], focus: tuple[Focus, ...]) -> list[ParagraphFacts]:
    """Every paragraph's local facts, through the process's cache: what the
    document-level findings are made of, whatever provider reads the paragraphs."""
    return [cached_paragraph(p, focus) for p in paragraphs]


def across(whole: DocumentFindings) -> list[tuple[int, Finding]]:
    """The document-level suggestions, as ``OpenPass.finish`` and ``settle`` take them."""
    return [
        (found.paragraph, _finding(found.suggestion))
        for found in whole.suggestions
        if shown(found.suggestion.rule)
    ]


def _finding(s: SuggestionFound) -> Finding:
    start = s.start or 0  # the local analyzer always knows where its quote is
    return Finding(s.focus, start, start + len(s.quote), s.message, s.replacement, s.rule)
