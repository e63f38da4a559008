"""An analysis pass of a live document with the ``local`` provider: the stale paragraphs
read (each through the per-process paragraph cache, so a paragraph seen before, in this
document or another, costs a lookup), the document-level findings recombined from every
paragraph's cached facts, and the live set settled."""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import replace

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
from amplify_stream.text.paragraphs import has_blank_line


class LocalAnalyzer:
    """The offline analyzer, paragraph by paragraph through its content cache: a pass
    on one changed paragraph takes a millisecond or two, so it runs inline."""

    name = "local"
    model: str | None = None

    async def analyze(self, doc: DocumentState, emit: Emit) -> PassFindings:
        await asyncio.sleep(0)  # a pass superseded before it began does nothing
        return local_pass(doc)

    async def aclose(self) -> None:
        return None


def local_pass(doc: DocumentState) -> PassFindings:
    wrapped = has_blank_line(doc.text)
    if doc.read_wrapped is not None and doc.read_wrapped != wrapped:
        doc.current = [False] * len(doc.current)  # the same lines make other paragraphs
    doc.read_wrapped = wrapped
    stale = doc.stale()
    lines = doc.paragraphs
    facts = paragraph_facts(lines, doc.focus)
    whole = document_findings(document_facts(lines, facts, doc.focus, wrapped), doc.focus)
    findings = {i: [_finding(s) for s in facts[i].suggestions if shown(s.rule)] for i in stale}
    spanning = across(whole)
    if wrapped:
        _read_wrapped(lines, doc.focus, set(stale), findings, spanning)
    return PassFindings(doc.settle(findings, spanning), whole.insights)


def document_facts(
    lines: Sequence[str],
    facts: Sequence[ParagraphFacts],
    focus: tuple[Focus, ...],
    wrapped: bool,
) -> list[ParagraphFacts]:
    """The paragraphs' facts as the document-level findings take them: each line's
    (``facts``), or in a text whose paragraphs are separated by blank lines (``wrapped``),
    a hard-wrapped paragraph's whole at its first line, its other lines as blank ones."""
    if not wrapped:
        return list(facts)
    whole = list(facts)
    blank = cached_paragraph("", focus)
    for first, last in wrapped_paragraphs(lines):
        whole[first] = cached_paragraph("\n".join(lines[first : last + 1]), focus)
        whole[first + 1 : last + 1] = [blank] * (last - first)
    return whole


def _read_wrapped(
    lines: Sequence[str],
    focus: tuple[Focus, ...],
    stale: set[int],
    findings: dict[int, list[Finding]],
    spanning: list[tuple[int, Finding]],
) -> None:
    """In a text whose paragraphs are separated by blank lines, a paragraph written
    across lines (hard-wrapped) is read whole: a sentence over a line break is one
    sentence. Its lines' findings are the paragraph's, each in the line it starts in; one
    that runs into the next line is settled with the document-level ones (found anew each
    pass, through the cache). A paragraph's lines are read again when one of them, or a
    line beside them, changed."""
    for first, last in wrapped_paragraphs(lines):
        touched = bool(stale & set(range(first - 1, last + 2)))
        block = lines[first : last + 1]
        starts = [0]
        for line in block[:-1]:
            starts.append(starts[-1] + len(line) + 1)
        if touched:
            for k in range(first, last + 1):
                findings[k] = []
        for s in cached_paragraph("\n".join(block), focus).suggestions:
            if not shown(s.rule):
                continue
            start = s.start or 0
            k = bisect_right(starts, start) - 1
            f = _finding(replace(s, start=start - starts[k]))
            if f.end > len(block[k]):
                spanning.append((first + k, f))
            elif touched:
                findings[first + k].append(f)


def wrapped_paragraphs(lines: Sequence[str]) -> list[tuple[int, int]]:
    """The (first, last) line of every run of two or more lines with words, between
    blank lines."""
    runs, first = [], None
    for i, line in enumerate([*lines, ""]):
        if line.strip():
            first = i if first is None else first
        else:
            if first is not None and i - 1 > first:
                runs.append((first, i - 1))
            first = None
    return runs


def insights_of(doc: DocumentState) -> tuple[InsightFound, ...]:
    """The document's insights now, from every paragraph's cached facts (what a pass of
    any provider reports; a reopen tells them without a pass)."""
    lines = doc.paragraphs
    facts = paragraph_facts(lines, doc.focus)
    wrapped = has_blank_line(doc.text)
    return document_findings(document_facts(lines, facts, doc.focus, wrapped), doc.focus).insights


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
