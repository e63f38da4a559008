"""Which files the language server checks, and where their markup is not prose.

The service reads the whole file (its offsets must be the editor's), and the findings
that touch markup are dropped: Markdown code (fenced, indented, inline), raw HTML, link
targets, reference definitions and front matter; reStructuredText literal blocks,
directives and comments, inline literals, roles and link targets.

Markdown's blocks come from markdown-it-py (CommonMark: a fence inside a list, or an
indented block, is what a regex gets wrong); inline markup has no positions there, so it
is found by the patterns below, on the lines outside those blocks.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from enum import Enum
from pathlib import PurePosixPath
from urllib.parse import unquote, urlparse

from markdown_it import MarkdownIt

from amplify_stream.text.edits import utf16_length


class Kind(Enum):
    PLAIN = "plain"
    MARKDOWN = "markdown"
    RST = "rst"


_BY_LANGUAGE = {
    "plaintext": Kind.PLAIN,
    "text": Kind.PLAIN,
    "markdown": Kind.MARKDOWN,
    "restructuredtext": Kind.RST,
    "rst": Kind.RST,
}
_BY_SUFFIX = {
    ".txt": Kind.PLAIN,
    ".text": Kind.PLAIN,
    ".md": Kind.MARKDOWN,
    ".markdown": Kind.MARKDOWN,
    ".rst": Kind.RST,
}


def kind_of(uri: str, language_id: str) -> Kind | None:
    """The kind of a file the server checks; None for any other (source code...)."""
    if language_id in _BY_LANGUAGE:
        return _BY_LANGUAGE[language_id]
    suffix = PurePosixPath(unquote(urlparse(uri).path)).suffix.lower()
    return _BY_SUFFIX.get(suffix)


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)?")
_MD_INLINE = re.compile(
    r"(?P<code>(?<!`)(?P<ticks>`+)(?!`).+?(?<!`)(?P=ticks)(?!`))"  # `code`, ``co`de``
    r"|\]\((?P<target>[^)\s]*(?:\s+\"[^\"]*\")?)\)"  # [text](target "title")
    r"|(?P<auto><(?:[a-zA-Z][a-zA-Z0-9+.-]{1,31}:[^\s<>]*|[^\s<>@]+@[^\s<>]+)>)"
    r"|(?P<html></?[a-zA-Z][a-zA-Z0-9-]*(?:\s[^<>]*)?/?>)"
    r"|^\s{0,3}(?P<refdef>\[[^\]]+\]:\s*\S.*)$"  # [label]: target
)
_FRONT_MATTER = re.compile(r"\A(---|\+\+\+)\r?\n.*?\r?\n\1[ \t]*(?:\r?\n|\Z)", re.S)
_MD_BLOCKS = frozenset({"fence", "code_block", "html_block"})

_RST_INLINE = re.compile(
    r"``.+?``"  # ``literal``
    r"|:[a-zA-Z0-9_.+-]+:`[^`]+`"  # :role:`target`
    r"|`[^`]+`_{1,2}"  # `text <target>`_, `name`_
    r"|`[^`]+`(?::[a-zA-Z0-9_.+-]+:)?"  # `interpreted`, `x`:role:
    r"|\|[^|\s][^|]*\|"  # |substitution|
    r"|https?://\S+"
)


def non_prose(text: str, kind: Kind) -> list[tuple[int, int]]:
    """The ``[start, end)`` spans of ``text`` that are markup, in UTF-16 units, sorted."""
    if kind is Kind.PLAIN:
        return []
    lines = [m.group() for m in _LINE.finditer(text)][:-1] or [""]
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    if kind is Kind.MARKDOWN:
        spans = list(_markdown(text, lines, starts))
    else:
        spans = list(_rst(lines, starts))
    return _to_utf16(text, sorted(spans))


def overlaps(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    """Whether ``[start, end)`` touches any of ``spans`` (an empty span: lies within)."""
    return any(s < end and start < e if start < end else s <= start < e for s, e in spans)


def _markdown(text: str, lines: list[str], starts: list[int]) -> Iterator[tuple[int, int]]:
    blocked: set[int] = set()
    front = _FRONT_MATTER.match(text)
    body = text
    if front:
        yield 0, front.end()
        first = text.count("\n", 0, front.end()) if "\n" in text else 0
        blocked.update(range(first))
        # The rest is parsed with the front matter's lines blanked, so line numbers hold.
        body = "\n" * first + text[front.end() :]
    for token in MarkdownIt("commonmark").parse(body):
        if token.type in _MD_BLOCKS and token.map:
            first, last = token.map
            blocked.update(range(first, last))
            yield starts[first], starts[min(last, len(lines))]
    for number, line in enumerate(lines):
        if number in blocked:
            continue
        for match in _MD_INLINE.finditer(line):
            group = "code" if match.lastgroup in (None, "ticks") else match.lastgroup
            yield starts[number] + match.start(group), starts[number] + match.end(group)


def _rst(lines: list[str], starts: list[int]) -> Iterator[tuple[int, int]]:
    number = 0
    literal_next = False
    while number < len(lines):
        line = lines[number].rstrip("\r\n")
        stripped = line.strip()
        directive = line.startswith("..") and (len(line) == 2 or line[2] in " \t")
        if directive or (literal_next and stripped and line[:1] in " \t"):
            # The directive (or comment, target) and its indented body; or the indented
            # block after a paragraph that ends with "::".
            end = number + 1
            while end < len(lines) and (not lines[end].strip() or lines[end][:1] in " \t"):
                end += 1
            yield starts[number], starts[end]
            number, literal_next = end, False
            continue
        if stripped:
            literal_next = stripped.endswith("::")
            for match in _RST_INLINE.finditer(line):
                yield starts[number] + match.start(), starts[number] + match.end()
        number += 1


def _to_utf16(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    if text.isascii():
        return spans
    # One walk over the text: each boundary's offset from the one before it.
    offsets: dict[int, int] = {}
    at = units = 0
    for boundary in sorted({i for span in spans for i in span}):
        units += utf16_length(text[at:boundary])
        offsets[boundary], at = units, boundary
    return [(offsets[s], offsets[e]) for s, e in spans]
