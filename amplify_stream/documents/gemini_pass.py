"""An analysis pass of a live document with Gemini: one streamed structured call per
stale paragraph, the whole document as its context, each suggestion live and given to
``emit`` the moment its object closes.

- Concurrency: a pass starts every paragraph's call at once; the user's call slots bound
  the calls in flight (``doc_gemini_calls_per_user``, ``call_slots.py``: per process, or
  once for every owner in Redis), so a big paste or several of one user's documents wait
  their turn rather than open dozens of streams.
- Only the pass's own task touches the document (the calls run as tasks that post what
  they find to a queue): the owner cancels that task in the fold of the edit that
  supersedes it, so no find lands on a text it was not read from. Cancelling it cancels
  the calls, which closes their connections (``gemini_client.py``).
- The end of a pass is one synchronous step (``OpenPass.finish``): the paragraphs whose
  answers were whole lose what was not found again. A failed call fails the pass: what was
  emitted stays live, nothing is retracted, and the paragraphs stay stale for the next.
- The document-level findings (insights, look-alike names, repeats across lines) come
  from the local per-paragraph facts, as in the local pass: cheap, no extra call.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass

from google.genai import types
from pydantic import BaseModel, Field

from amplify_stream.config.groups import GeminiSettings
from amplify_stream.documents.analyzers import Emit, PassFindings
from amplify_stream.documents.call_slots import CallSlots
from amplify_stream.documents.local_pass import across, document_facts, paragraph_facts
from amplify_stream.documents.state import DocumentState, Finding
from amplify_stream.errors import ProviderError
from amplify_stream.events import Focus
from amplify_stream.providers.base import FindingSkipped, Piece, SuggestionFound, UsageReport
from amplify_stream.providers.gemini_analysis import (
    EDITOR_STANDARD,
    FOCUS_GUIDE,
    AnalysisStream,
    GeminiSuggestion,
)
from amplify_stream.providers.gemini_client import (
    close_client,
    create_client,
    provider_error,
    stream_findings,
)
from amplify_stream.providers.local.paragraphs import document_findings
from amplify_stream.text.paragraphs import has_blank_line
from amplify_stream.text.spans import locate

log = logging.getLogger(__name__)

PARAGRAPH_INSTRUCTION = (
    "You are a developmental editor reading along while a writer drafts. The user sends "
    "the whole document, for context, and one paragraph of it to review. Cover only the "
    f"focuses listed: {FOCUS_GUIDE}. Give suggestions for that paragraph only: concrete "
    "notes about one passage each, whose quote is copied character for character from "
    "the paragraph (a short excerpt, at most one sentence) so the writer's editor can "
    "highlight it; give a replacement only when it can directly replace the quote. "
    f"{EDITOR_STANDARD}"
)


class ParagraphSuggestion(GeminiSuggestion):
    quote: str = Field(
        description="An exact excerpt of the paragraph under review, copied character for "
        "character."
    )


class ParagraphAnalysis(BaseModel):
    """The response schema of a paragraph's call."""

    suggestions: list[ParagraphSuggestion]


@dataclass(frozen=True, slots=True)
class _Found:
    index: int
    finding: Finding


@dataclass(frozen=True, slots=True)
class _Skipped:
    why: str  # never the text itself


@dataclass(frozen=True, slots=True)
class _Read:
    index: int  # the paragraph's answer is whole


@dataclass(frozen=True, slots=True)
class _Failed:
    error: Exception


_Event = _Found | _Skipped | _Read | _Failed


class GeminiAnalyzer:
    name = "gemini"

    def __init__(self, settings: GeminiSettings, *, slots: CallSlots) -> None:
        """``slots``: each user's calls in flight at once (closed with the analyzer)."""
        self._client = create_client(settings)
        self.model = settings.gemini_model
        self._idle_timeout_s = settings.gemini_idle_timeout_s
        self._slots = slots
        self._config = types.GenerateContentConfig(
            system_instruction=PARAGRAPH_INSTRUCTION,
            temperature=0.3,
            response_mime_type="application/json",
            response_schema=ParagraphAnalysis,
        )

    async def analyze(self, doc: DocumentState, emit: Emit) -> PassFindings:
        open_pass = doc.begin_pass()
        reading = _Reading(doc.text, doc.paragraphs, doc.focus, doc.title)
        paragraphs, focus = reading.paragraphs, reading.focus
        stale = doc.stale()
        read = [i for i in stale if not paragraphs[i].strip()]  # a blank line: nothing to ask
        events: asyncio.Queue[_Event] = asyncio.Queue()
        calls = [
            asyncio.create_task(
                self._read(i, reading, doc.user_id, events),
                name=f"gemini-paragraph:{doc.doc_id}:{i}",
            )
            for i in stale
            if paragraphs[i].strip()
        ]
        skipped: list[str] = []
        told = False
        try:
            while len(read) < len(stale):
                event = await events.get()
                if isinstance(event, _Found):
                    if (live := open_pass.found(event.index, event.finding)) is not None:
                        emit(live)
                        told = True
                elif isinstance(event, _Skipped):
                    skipped.append(event.why)
                elif isinstance(event, _Read):
                    read.append(event.index)
                else:
                    raise provider_error(event.error, started=told)
        finally:
            for call in calls:
                call.cancel()
            await asyncio.gather(*calls, return_exceptions=True)
        if skipped:
            log.warning(
                "document %s: %d suggestion(s) from Gemini left out: %s",
                doc.doc_id,
                len(skipped),
                "; ".join(sorted(set(skipped))),
            )
        facts = paragraph_facts(paragraphs, focus)
        wrapped = has_blank_line("\n".join(paragraphs))
        whole = document_findings(document_facts(paragraphs, facts, focus, wrapped), focus)
        return PassFindings(open_pass.finish(read, across(whole)), whole.insights, len(skipped))

    async def aclose(self) -> None:
        await close_client(self._client)
        await self._slots.aclose()

    async def _read(
        self,
        index: int,
        reading: _Reading,
        user_id: str,
        out: asyncio.Queue[_Event],
    ) -> None:
        """One paragraph's call: what it finds, placed in the paragraph, then ``_Read``
        (or ``_Failed``) on ``out``."""
        place = _Placer(reading.paragraphs[index])
        analysis = AnalysisStream(reading.focus, ParagraphAnalysis)
        try:
            async with self._slots.hold(user_id):
                loop = asyncio.get_running_loop()
                try:
                    async with asyncio.timeout(self._idle_timeout_s) as idle:
                        async for found in stream_findings(
                            self._client,
                            self.model,
                            reading.prompt(index),  # made here: each holds the whole text
                            self._config,
                            analysis,
                            "paragraph analysis",
                        ):
                            idle.reschedule(loop.time() + self._idle_timeout_s)
                            if isinstance(found, UsageReport):
                                continue
                            for piece in found:
                                out.put_nowait(place(index, piece))
                except TimeoutError:
                    if not idle.expired():
                        raise
                    raise ProviderError(
                        f"Gemini stalled: nothing received for {self._idle_timeout_s:g} s"
                    ) from None
            out.put_nowait(_Read(index))
        except Exception as exc:  # the pass maps it: it knows whether finds went out
            out.put_nowait(_Failed(exc))


@dataclass(frozen=True, slots=True)
class _Reading:
    """The document as one pass reads it: its text at the pass's version."""

    text: str
    paragraphs: list[str]
    focus: tuple[Focus, ...]
    title: str | None

    def prompt(self, index: int) -> str:
        lines = [f"Focus: {', '.join(self.focus)}"]
        if self.title:
            lines.append(f"Title: {self.title}")
        # The tags tell the model (and the fake) where the document and the paragraph
        # are; the paragraph comes last, so a tag typed inside the document is not it.
        lines += [
            f"<document>\n{self.text}\n</document>",
            f"Review line {index + 1} of the document's {len(self.paragraphs)}, "
            "this paragraph only:",
            f"<paragraph>\n{self.paragraphs[index]}\n</paragraph>",
        ]
        return "\n".join(lines)


class _Placer:
    """A suggestion's quote placed in its paragraph (``locate``: exactly, or with
    look-alike quote marks, dashes and spaces, as the story path does; the live quote is
    always the paragraph's own slice). The same note quoting the same words twice goes
    to their next occurrence, not twice to the first."""

    def __init__(self, paragraph: str) -> None:
        self._paragraph = paragraph
        self._seen: Counter[tuple[str, str, str | None, str]] = Counter()

    def __call__(self, index: int, piece: Piece) -> _Event:
        if isinstance(piece, FindingSkipped):
            return _Skipped(f"against the schema ({piece.error})")
        if not isinstance(piece, SuggestionFound):  # no insights in this schema
            return _Skipped(f"not a suggestion ({type(piece).__name__})")
        note = (piece.focus, piece.message, piece.replacement, piece.quote)
        nth = self._seen[note]
        self._seen[note] += 1
        span = _nth(self._paragraph, piece.quote, nth) or locate(self._paragraph, piece.quote)
        if span is None:
            return _Skipped("a quote that is not in its paragraph")
        start, end = span
        return _Found(
            index, Finding(piece.focus, start, end, piece.message, piece.replacement, piece.rule)
        )


def _nth(text: str, quote: str, nth: int) -> tuple[int, int] | None:
    """The ``nth`` exact occurrence of ``quote`` (the last one if there are fewer)."""
    found, start = None, text.find(quote)
    while start != -1 and quote:
        found = start
        if nth == 0:
            break
        nth -= 1
        start = text.find(quote, start + 1)
    return None if found is None else (found, found + len(quote))
