"""An analysis pass of a live document with the ``local`` provider: the stale paragraphs
read (each through the per-process paragraph cache, so a paragraph seen before, in this
document or another, costs a lookup), the document-level findings recombined from every
paragraph's cached facts, and the live set settled."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from amplify_stream.documents.state import DocumentState, Finding, PassResult
from amplify_stream.events import Focus
from amplify_stream.providers.base import InsightFound, SuggestionFound
from amplify_stream.providers.local.paragraphs import (
    DocumentFindings,
    ParagraphFacts,
    cached_paragraph,
    document_findings,
)


@dataclass(frozen=True, slots=True)
class PassFindings:
    result: PassResult
    insights: tuple[InsightFound, ...]
    # Suggestions the provider wrote but the pass left out (against the schema, or
    # quoting what the paragraph does not hold): logged and counted, never sent.
    skipped: int = 0


def local_pass(doc: DocumentState) -> PassFindings:
    stale = doc.stale()
    facts = paragraph_facts(doc.paragraphs, doc.focus)
    whole = document_findings(facts, doc.focus)
    result = doc.settle(
        {i: [_finding(s) for s in facts[i].suggestions] for i in stale}, across(whole)
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
    return [(found.paragraph, _finding(found.suggestion)) for found in whole.suggestions]


def _finding(s: SuggestionFound) -> Finding:
    start = s.start or 0  # the local analyzer always knows where its quote is
    return Finding(s.focus, start, start + len(s.quote), s.message, s.replacement)
