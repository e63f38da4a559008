"""An analysis pass of a live document with the ``local`` provider: the stale paragraphs
read (each through the per-process paragraph cache, so a paragraph seen before, in this
document or another, costs a lookup), the document-level findings recombined from every
paragraph's cached facts, and the live set settled."""

from __future__ import annotations

from dataclasses import dataclass

from amplify_stream.documents.state import DocumentState, Finding, PassResult
from amplify_stream.providers.base import InsightFound, SuggestionFound
from amplify_stream.providers.local.paragraphs import cached_paragraph, document_findings


@dataclass(frozen=True, slots=True)
class PassFindings:
    result: PassResult
    insights: tuple[InsightFound, ...]


def local_pass(doc: DocumentState) -> PassFindings:
    stale = doc.stale()
    facts = [cached_paragraph(p, doc.focus) for p in doc.paragraphs]
    whole = document_findings(facts, doc.focus)
    result = doc.settle(
        {i: [_finding(s) for s in facts[i].suggestions] for i in stale},
        [(found.paragraph, _finding(found.suggestion)) for found in whole.suggestions],
    )
    return PassFindings(result, whole.insights)


def _finding(s: SuggestionFound) -> Finding:
    start = s.start or 0  # the local analyzer always knows where its quote is
    return Finding(s.focus, start, start + len(s.quote), s.message, s.replacement)
