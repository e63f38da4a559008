"""LSP positions to the service's UTF-16 offsets and back, for each position encoding."""

from __future__ import annotations

import pytest
from lsprotocol import types

from amplify_stream.lsp.positions import UTF8, UTF16, UTF32, LineIndex


def pos(line: int, character: int) -> types.Position:
    return types.Position(line=line, character=character)


def test_lines_break_at_lsp_line_breaks_only() -> None:
    text = "a\r\nb\rc\nd\x0ce\u2028f"
    index = LineIndex.of(text)
    assert [index.offset(pos(n, 0)) for n in range(4)] == [0, 3, 5, 7]
    # A form feed and U+2028 are characters of line 3, not breaks (str.splitlines
    # would split there).
    assert index.offset(pos(3, 4)) == text.index("f")
    assert index.position(text.index("f")) == pos(3, 4)


@pytest.mark.parametrize(
    ("encoding", "character", "expected"),
    [(UTF16, 2, 1), (UTF16, 3, 2), (UTF32, 1, 1), (UTF8, 4, 1), (UTF8, 7, 2)],
)
def test_characters_count_in_the_negotiated_encoding(
    encoding: str, character: int, expected: int
) -> None:
    index = LineIndex.of("🌊港x", encoding)
    assert index.offset(pos(0, character)) == expected
    assert index.position(expected) == pos(0, character)


def test_utf16_offsets_of_the_service() -> None:
    text = "🌊 harbour\n港口 🌊 Mara"
    index = LineIndex.of(text)
    offset = index.offset_utf16(pos(1, 6))
    assert offset == len(text[: text.index("Mara")].encode("utf-16-le")) // 2
    assert index.position_utf16(offset) == pos(1, 6)
    assert index.range_utf16(0, 2) == types.Range(start=pos(0, 0), end=pos(0, 2))


def test_out_of_range_positions_clamp_as_lsp_says() -> None:
    index = LineIndex.of("ab\r\ncd")
    assert index.offset(pos(0, 99)) == 2  # the line's end, before its break
    assert index.offset(pos(7, 0)) == len("ab\r\ncd")
    # Inside a surrogate pair: the character's start.
    assert LineIndex.of("🌊").offset(pos(0, 1)) == 0
