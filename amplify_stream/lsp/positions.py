"""LSP positions (line, character) and the service's UTF-16 offsets, converted exactly.

LSP counts lines by ``\\n``, ``\\r\\n`` and ``\\r`` only, and characters in the encoding
negotiated at ``initialize`` (UTF-16 unless the client offers another). Written here
rather than taken from pygls' ``PositionCodec``: its documents split lines with
``str.splitlines``, which also breaks at form feeds, ``\\x1c``-``\\x1e``, ``\\x85``
and U+2028/U+2029, so a line number after any of them would not be the editor's.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from lsprotocol import types

from amplify_stream.text.edits import Change, apply_change, code_point_index, utf16_length

_LINE_BREAK = re.compile(r"\r\n|\r|\n")

UTF8 = types.PositionEncodingKind.Utf8
UTF16 = types.PositionEncodingKind.Utf16
UTF32 = types.PositionEncodingKind.Utf32


def units(text: str, encoding: str) -> int:
    """How many code units of ``encoding`` ``text`` is."""
    if encoding == UTF16:
        return utf16_length(text)
    if encoding == UTF8:
        return len(text.encode("utf-8"))
    return len(text)


def _column(line: str, character: int, encoding: str) -> int:
    """The code point index in ``line`` of ``character`` code units; past the line's end
    is its end (as LSP says), and inside a character is that character's start."""
    if encoding == UTF32 or line.isascii():
        return min(character, len(line))
    count = 0
    for index, char in enumerate(line):
        step = units(char, encoding)
        if count + step > character:
            return index
        count += step
    return len(line)


@dataclass(frozen=True, slots=True)
class LineIndex:
    """Where each line of ``text`` starts (code point indices, and UTF-16 offsets), for
    one text: a conversion then reads one line, not the text before it (a diagnostic
    near the end of a long chapter costs what one near its start does)."""

    text: str
    encoding: str
    starts: tuple[int, ...]
    # Where each line's content ends (before its line break).
    ends: tuple[int, ...]
    # The UTF-16 offset of each line's start.
    starts16: tuple[int, ...]

    @classmethod
    def of(cls, text: str, encoding: str = UTF16) -> LineIndex:
        starts, ends = [0], []
        for brk in _LINE_BREAK.finditer(text):
            ends.append(brk.start())
            starts.append(brk.end())
        ends.append(len(text))
        if text.isascii():
            starts16 = starts
        else:
            starts16 = [0]
            for before, start in itertools.pairwise(starts):
                starts16.append(starts16[-1] + utf16_length(text[before:start]))
        return cls(text, encoding, tuple(starts), tuple(ends), tuple(starts16))

    def offset(self, position: types.Position) -> int:
        """The code point index of ``position``; a line past the last is the text's end."""
        if position.line >= len(self.starts):
            return len(self.text)
        start, end = self.starts[position.line], self.ends[position.line]
        return start + _column(self.text[start:end], position.character, self.encoding)

    def offset_utf16(self, position: types.Position) -> int:
        if position.line >= len(self.starts):
            return self.starts16[-1] + utf16_length(self.text[self.starts[-1] :])
        start = self.starts[position.line]
        return self.starts16[position.line] + utf16_length(self.text[start : self.offset(position)])

    def position(self, index: int) -> types.Position:
        """The position of code point index ``index``."""
        line = bisect.bisect_right(self.starts, index) - 1
        start = self.starts[line]
        index = min(index, self.ends[line])  # never inside a line break
        return types.Position(line=line, character=units(self.text[start:index], self.encoding))

    def position_utf16(self, offset_utf16: int) -> types.Position:
        line = max(bisect.bisect_right(self.starts16, offset_utf16) - 1, 0)
        start = self.starts[line]
        following = self.starts[line + 1] if line + 1 < len(self.starts) else len(self.text)
        within = code_point_index(self.text[start:following], offset_utf16 - self.starts16[line])
        return self.position(start + within)

    def range_utf16(self, start_utf16: int, end_utf16: int) -> types.Range:
        return types.Range(
            start=self.position_utf16(start_utf16), end=self.position_utf16(end_utf16)
        )


def service_changes(
    text: str, events: Sequence[types.TextDocumentContentChangeEvent], encoding: str
) -> tuple[str, list[Change]]:
    """The editor's content changes of ``text`` as the service's (UTF-16 offsets, each
    against the text the changes before it made), and the text after them all."""
    changes = []
    for event in events:
        if isinstance(event, types.TextDocumentContentChangePartial):
            index = LineIndex.of(text, encoding)
            start = index.offset_utf16(event.range.start)
            end = index.offset_utf16(event.range.end)
            change = Change(start, end, event.text)
        else:  # the whole text
            change = Change(0, utf16_length(text), event.text)
        text = apply_change(text, change)
        changes.append(change)
    return text, changes
