"""A cursor is what ``format_cursor`` writes, and ``CURSOR_PATTERN`` (the OpenAPI
document's) says the same as ``parse_cursor``."""

from __future__ import annotations

import re

import pytest

from amplify_stream.bus.base import CURSOR_PATTERN, format_cursor, parse_cursor


def test_a_cursor_reads_back() -> None:
    assert parse_cursor(format_cursor(2, 41)) == (2, 41)


@pytest.mark.parametrize(
    "cursor", ["", "2", "2-", "-41", "-1-5", "2-41-1", "2-4x", " 2-41", "2-41\n", "٣-1", "2-٤١"]
)
def test_anything_else_is_refused_by_both(cursor: str) -> None:
    with pytest.raises(ValueError):
        parse_cursor(cursor)
    # JSON Schema's ``$`` ends the text (ECMA-262): ``fullmatch`` is Python's reading.
    assert re.fullmatch(CURSOR_PATTERN.strip("^$"), cursor) is None


def test_a_cursor_too_long_to_read_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_cursor("0-" + "9" * 5000)
