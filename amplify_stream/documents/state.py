"""One live document as its owner holds it (docs/protocol.md section 6): the text at its
version, the live suggestions with their spans, and which paragraphs the last analysis
pass left current.

Pure: no I/O, no clock. Its owner feeds it the document's commands in log order and turns
what it answers into events, so a new owner that replays the same log (from a snapshot)
ends in the same state, conflicts included.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from amplify_stream.documents.ignores import Ignores, sentence_around
from amplify_stream.events import Focus
from amplify_stream.events.text_limits import check_length
from amplify_stream.text.edits import (
    Change,
    InvalidChange,
    LiveSpan,
    code_point_index,
    shift,
    utf16_length,
)


class StalePass(RuntimeError):
    """A pass that goes on after an edit: its paragraph indices no longer hold. (The
    owner cancels a pass before its edit's fold returns, so this is a bug if raised.)"""


@dataclass(frozen=True, slots=True)
class Finding:
    """A suggestion a provider found in one paragraph, its span relative to the
    paragraph's start in code points: the same paragraph text gives the same findings."""

    focus: Focus
    start: int
    end: int
    message: str
    replacement: str | None = None
    rule: str | None = None


@dataclass(frozen=True, slots=True)
class LiveSuggestion:
    id: str
    focus: Focus
    quote: str
    message: str
    replacement: str | None
    start_utf16: int
    end_utf16: int
    rule: str | None = None

    @property
    def span(self) -> LiveSpan:
        return LiveSpan(self.id, self.start_utf16, self.end_utf16)

    def moved(self, span: LiveSpan) -> LiveSuggestion:
        return LiveSuggestion(
            self.id,
            self.focus,
            self.quote,
            self.message,
            self.replacement,
            span.start_utf16,
            span.end_utf16,
            self.rule,
        )


@dataclass(frozen=True, slots=True)
class Applied:
    version: int
    retracted: list[str]
    # Suggestions the edit accepted: it put the replacement exactly where the quote was.
    accepted: list[LiveSuggestion] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Conflict:
    version: int  # the document's current version, for the client to catch up


@dataclass(frozen=True, slots=True)
class PassResult:
    """What one analysis pass changed in the live set."""

    version: int
    added: list[LiveSuggestion]
    retracted: list[str]
    reanalyzed: int  # paragraphs read again


@dataclass
class DocumentState:
    doc_id: str
    user_id: str
    text: str
    title: str | None = None
    focus: tuple[Focus, ...] = ("plot", "character", "dialogue", "setting")
    version: int = 0
    live: dict[str, LiveSuggestion] = field(default_factory=dict)
    # Per paragraph: read by a pass and untouched since (False: to be read again).
    current: list[bool] = field(default_factory=list)
    # The version the last finished pass read (None: never analyzed).
    analyzed_version: int | None = None
    # Whether the last local pass read hard-wrapped paragraphs whole (the text had blank
    # lines; None: not known, as after a restore): when that changes, every line is read
    # again, since the same lines then make other paragraphs.
    read_wrapped: bool | None = field(default=None, compare=False)
    # What the writer said no to (docs/protocol.md section 6, "The writer's say").
    ignores: Ignores = field(default_factory=Ignores)
    # Bookkeeping of the passes, read through ``ids`` and ``across`` and set again only
    # by ``restore`` (from a snapshot).
    _ids: int = field(default=0, init=False)
    _across: set[str] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        if not self.current:
            self.current = [False] * len(self.paragraphs)

    @property
    def ids(self) -> int:
        """How many suggestions have gone live in this document, ever."""
        return self._ids

    @property
    def across(self) -> frozenset[str]:
        """The live ids of the document-level findings (each pass finds them anew)."""
        return frozenset(self._across)

    def restore(self, *, ids: int, across: Iterable[str]) -> None:
        """The bookkeeping a snapshot kept (``ids``, ``across``), for the document made
        again from it."""
        self._ids = ids
        self._across = set(across)

    def found_across(self, ids: Iterable[str]) -> None:
        """The live ids of the document-level findings of the pass that just finished."""
        self._across = set(ids)

    # ------------------------------------------------------------ edits

    def edit(
        self, version: int, changes: Sequence[Change], *, max_chars: int | None = None
    ) -> Applied | Conflict:
        """Apply an edit that carries exactly the next version; ``InvalidChange`` (nothing
        applied) when a change cannot apply, ``TextTooLong`` when the text would be longer
        than ``max_chars``."""
        if version != self.version + 1:
            return Conflict(self.version)
        # Every change placed first (each on what the one before leaves): one that
        # cannot apply raises before anything changes.
        text, placed = self.text, []
        for change in changes:
            if change.start_utf16 > change.end_utf16:
                raise InvalidChange(
                    f"a change starts after its end ({change.start_utf16} > {change.end_utf16})"
                )
            start = code_point_index(text, change.start_utf16)
            end = code_point_index(text, change.end_utf16)
            placed.append((change, start, end, text))
            text = text[:start] + change.text + text[end:]
        if max_chars is not None:
            check_length(text, max_chars)
        retracted: list[str] = []
        accepted: list[LiveSuggestion] = []
        for change, start, end, before in placed:
            accepted += [s for s in self.live.values() if _accepts(change, s)]
            retracted += self._apply(change, start, end, before)
        # An accepted suggestion is done with, even where its span outlived the change (an
        # insertion at its edge: "door" -> "the door").
        kept = [s.id for s in accepted if s.id in self.live]
        self.retract(kept)
        retracted += kept
        self.text = text
        self.version = version
        return Applied(version, retracted, accepted)

    def _apply(self, change: Change, start: int, end: int, before: str) -> list[str]:
        """The paragraphs and spans after ``change`` (at code points ``start``-``end`` of
        the text ``before`` it)."""
        first = before.count("\n", 0, start)
        last = first + before.count("\n", start, end)
        # The paragraphs the change touches become as many as it leaves, none current.
        self.current[first : last + 1] = [False] * (1 + change.text.count("\n"))
        if self.live:
            spans, retracted = shift([s.span for s in self.live.values()], change)
            for sid in retracted:
                del self.live[sid]
            for span in spans:
                if (live := self.live[span.id]).start_utf16 != span.start_utf16:
                    self.live[span.id] = live.moved(span)
            return retracted
        return []

    # ------------------------------------------------------------ analysis

    @property
    def paragraphs(self) -> list[str]:
        """A paragraph is a line: the text between two line breaks."""
        return self.text.split("\n")

    def stale(self) -> list[int]:
        """The paragraphs a pass must read: changed (or never read) since the last one."""
        return [i for i, current in enumerate(self.current) if not current]

    def begin_pass(self) -> OpenPass:
        """A pass on the current text that adds each suggestion the moment it is found
        and settles the rest in one step at its end (``OpenPass``)."""
        return OpenPass(self)

    def settle(
        self,
        findings: Mapping[int, Sequence[Finding]],
        across: Sequence[tuple[int, Finding]] = (),
    ) -> PassResult:
        """The live set after a pass on the current text that read ``findings``
        (paragraph index -> what the provider found in it) and found ``across`` (what
        depends on the whole document, as (paragraph, finding): found anew every pass).
        A live suggestion found again stays (same id), one not found is retracted, and a
        new one is added. (A pass whose findings are all known at once: ``OpenPass``
        with every ``found`` before its ``finish``.)"""
        open_pass = self.begin_pass()
        added = [
            live
            for index, found in sorted(findings.items())
            for f in found
            if (live := open_pass.found(index, f)) is not None
        ]
        result = open_pass.finish(findings, across)
        return PassResult(result.version, added + result.added, result.retracted, len(findings))

    # ------------------------------------------------------------ the live set

    def add_found(self, f: Finding, quote: str, at: int) -> LiveSuggestion:
        """``f`` live, its quote starting at UTF-16 offset ``at`` of the text (for a pass)."""
        self._ids += 1
        live = LiveSuggestion(
            self._new_id(f, quote, at),
            f.focus,
            quote,
            f.message,
            f.replacement,
            at,
            at + utf16_length(quote),
            f.rule,
        )
        self.live[live.id] = live
        return live

    def _new_id(self, f: Finding, quote: str, at: int) -> str:
        """An id made of what the suggestion is and where and when it was found, not of
        a counter: the owner that takes a document over after a crash runs again the
        passes its predecessor ran after the last snapshot, and gives what they found the
        same ids (a client that heard them hears the same again, not a second mark), and
        whatever it finds differently (a model's answer) gets ids of its own, never one
        the predecessor gave to something else."""
        what = "\x1f".join((f.focus, f.message, f.replacement or "", quote, str(at)))
        digest = hashlib.blake2b(what.encode(), digest_size=6).hexdigest()
        made = f"{self.doc_id[:8]}-{self.version}-{digest}"
        # The same finding twice at one place (a paragraph's and a document-level one):
        # ids stay unique, deterministically.
        n = 1
        while (unique := made if n == 1 else f"{made}.{n}") in self.live:
            n += 1
        return unique

    # ------------------------------------------------------------ the writer's say

    def retract(self, ids: Collection[str]) -> None:
        """Live suggestions gone outside a pass (the writer's say hides them)."""
        for sid in ids:
            del self.live[sid]
        self._across.difference_update(ids)

    def read_again(self) -> None:
        """Every paragraph stale: what the writer took back (an undo) may be found again."""
        self.current = [False] * len(self.current)

    def paragraph_live(self, u_start: int, u_end: int) -> Iterator[LiveSuggestion]:
        """The live suggestions of one paragraph's findings (document-level ones aside)."""
        for s in self.live.values():
            if s.id not in self._across and u_start <= s.start_utf16 and s.end_utf16 <= u_end:
                yield s


class OpenPass:
    """An analysis pass under way on one version of a document.

    ``found`` makes a suggestion live at once (for the owner to send on); ``finish``, in
    one synchronous step once the paragraphs are read, retracts what they no longer hold,
    marks them current and reconciles the document-level findings. A pass abandoned before
    ``finish`` (cancelled by an edit) leaves the document consistent: what it added is live
    and was told, nothing was retracted, and the paragraphs it read stay stale, so the
    next pass reads them again, finds those suggestions again (same ids, not told twice)
    and retracts the rest. Identity is settle's: words, message and place.
    """

    def __init__(self, doc: DocumentState) -> None:
        self._doc = doc
        self._version = doc.version
        self._paragraphs = doc.paragraphs
        self._starts = _starts(self._paragraphs)
        self._kept: dict[int, set[str]] = {}  # per paragraph: the live ids found this pass

    def found(self, index: int, f: Finding) -> LiveSuggestion | None:
        """What the provider found in paragraph ``index`` (its span relative to the
        paragraph): the new live suggestion, or None when one already live there is the
        same (it stays, and is kept by ``finish``)."""
        self._check()
        quote, at = self._place(index, f)
        if self._hidden(index, f, quote):
            return None
        key = (f.focus, f.message, f.replacement, quote, at)
        kept = self._kept.setdefault(index, set())
        u_start, u_end = self._span(index)
        if same := next(
            (s for s in self._doc.paragraph_live(u_start, u_end) if _key(s) == key), None
        ):
            kept.add(same.id)
            return None
        live = self._doc.add_found(f, quote, at)
        kept.add(live.id)
        return live

    def finish(
        self, read: Collection[int], across: Sequence[tuple[int, Finding]] = ()
    ) -> PassResult:
        """The paragraphs ``read`` (their answers whole) keep what ``found`` gave them and
        lose the rest, and are current; ``across`` as ``settle`` takes it. The result's
        ``added`` holds only the document-level suggestions new here: each suggestion of a
        paragraph was live (and given) the moment it was found."""
        self._check()
        doc = self._doc
        retracted: list[str] = []
        for index in sorted(read):
            kept = self._kept.get(index, set())
            gone = [s.id for s in doc.paragraph_live(*self._span(index)) if s.id not in kept]
            for sid in gone:
                del doc.live[sid]
            retracted += gone
            doc.current[index] = True
        before = {_key(doc.live[sid]): sid for sid in doc.across if sid in doc.live}
        added: list[LiveSuggestion] = []
        kept_across: set[str] = set()
        for index, f in across:
            quote, at = self._place(index, f)
            if self._hidden(index, f, quote, across=True):
                continue
            if (same := before.get((f.focus, f.message, f.replacement, quote, at))) is None:
                live = doc.add_found(f, quote, at)
                added.append(live)
                same = live.id
            kept_across.add(same)
        for sid in before.values():
            if sid not in kept_across:
                retracted.append(sid)
                del doc.live[sid]
        doc.found_across(kept_across)
        doc.analyzed_version = doc.version
        return PassResult(doc.version, added, retracted, len(read))

    def _hidden(self, index: int, f: Finding, quote: str, *, across: bool = False) -> bool:
        """Whether the writer said no to ``f``: its key's surroundings are its sentence,
        none for a document-level finding (``say.surroundings``)."""
        return self._doc.ignores.hides(
            f.rule,
            f.focus,
            f.message,
            quote,
            lambda: "" if across else sentence_around(self._lines(index, f), f.start, f.end),
        )

    def _place(self, index: int, f: Finding) -> tuple[str, int]:
        """``f``'s quote, and where it starts in the whole text (UTF-16 units)."""
        paragraph = self._lines(index, f)
        return paragraph[f.start : f.end], self._starts[index] + utf16_length(paragraph[: f.start])

    def _lines(self, index: int, f: Finding) -> str:
        """The lines ``f`` lies in, from paragraph ``index``'s: a finding may run on past its
        paragraph's line (a sentence of a hard-wrapped paragraph)."""
        paragraph = self._paragraphs[index]
        if f.end > len(paragraph):
            lines, length = [paragraph], len(paragraph)
            for line in self._paragraphs[index + 1 :]:
                if length >= f.end:
                    break
                lines.append(line)
                length += 1 + len(line)
            paragraph = "\n".join(lines)
        return paragraph

    def _span(self, index: int) -> tuple[int, int]:
        start = self._starts[index]
        return start, start + utf16_length(self._paragraphs[index])

    def _check(self) -> None:
        if self._doc.version != self._version:
            raise StalePass(
                f"a pass on version {self._version} of {self._doc.doc_id} went on at "
                f"version {self._doc.version}"
            )


Key = tuple[Focus, str, "str | None", str, int]


def _key(s: LiveSuggestion) -> Key:
    """What makes a finding the same one: its words, its message, and where it sits."""
    return (s.focus, s.message, s.replacement, s.quote, s.start_utf16)


def _accepts(change: Change, s: LiveSuggestion) -> bool:
    """Whether ``change`` leaves ``s``'s replacement where its quote was, whole or as an
    editor's minimal diff sends it ("said softly" -> "said" as the deletion of " softly")."""
    if s.replacement is None or not (
        s.start_utf16 <= change.start_utf16 and change.end_utf16 <= s.end_utf16
    ):
        return False
    start = code_point_index(s.quote, change.start_utf16 - s.start_utf16)
    end = code_point_index(s.quote, change.end_utf16 - s.start_utf16)
    return s.quote[:start] + change.text + s.quote[end:] == s.replacement


def _starts(paragraphs: list[str]) -> list[int]:
    """Each paragraph's start in the whole text, in UTF-16 units."""
    starts, units = [], 0
    for p in paragraphs:
        starts.append(units)
        units += utf16_length(p) + 1
    return starts
