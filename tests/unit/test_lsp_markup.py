"""Which files the language server checks, and the markup whose findings it drops."""

from __future__ import annotations

from amplify_stream.lsp.markup import Kind, kind_of, non_prose, overlaps
from amplify_stream.text.edits import utf16_length


def covered(text: str, kind: Kind) -> list[str]:
    encoded = text.encode("utf-16-le")
    return [encoded[2 * s : 2 * e].decode("utf-16-le") for s, e in non_prose(text, kind)]


def test_kinds_by_language_then_suffix() -> None:
    assert kind_of("file:///a/b.py", "markdown") is Kind.MARKDOWN
    assert kind_of("file:///a/notes.TXT", "") is Kind.PLAIN
    assert kind_of("file:///a/ch%201.rst", "unknown") is Kind.RST
    assert kind_of("file:///a/b.py", "python") is None
    assert non_prose("She was `code`.", Kind.PLAIN) == []


def test_markdown_code_links_html_and_front_matter() -> None:
    text = (
        "---\ntitle: was very angry\n---\n"
        "# 🌊 Heading\n\n"
        'Prose with `inline code` and [a link](https://x.example/p "t") and <b>bold</b>.\n'
        "<https://auto.example> and <a@b.example>\n\n"
        "```python\nwas very angry\n```\n\n"
        "    indented code\n\n"
        "[ref]: https://ref.example\n"
        "- item\n\n  ```\n  fenced in a list\n  ```\n"
    )
    spans = covered(text, Kind.MARKDOWN)
    assert spans[0].startswith("---\ntitle") and spans[0].endswith("---\n")
    assert "`inline code`" in spans
    assert 'https://x.example/p "t"' in spans
    assert "<b>" in spans and "</b>" in spans
    assert "<https://auto.example>" in spans and "<a@b.example>" in spans
    assert "```python\nwas very angry\n```\n" in spans
    assert "    indented code\n" in spans
    assert "[ref]: https://ref.example" in spans
    assert any("fenced in a list" in s for s in spans)
    joined = "".join(spans)
    for prose in ("Heading", "Prose with", "a link", "bold", "item"):
        assert prose not in joined, prose


def test_rst_directives_literal_blocks_and_inline_markup() -> None:
    text = (
        "Title\n=====\n\n"
        ".. note:: was very angry\n   still the note\n\n"
        "Prose::\n\n    literal block\n\n"
        "Then ``literal`` and :ref:`target` and `a link <https://x.example>`_ here.\n"
    )
    spans = covered(text, Kind.RST)
    assert any(s.startswith(".. note::") and "still the note" in s for s in spans)
    assert any("literal block" in s for s in spans)
    assert {"``literal``", ":ref:`target`", "`a link <https://x.example>`_"} <= set(spans)
    joined = "".join(spans)
    assert "Prose" not in joined and "Then" not in joined and "here" not in joined


def test_spans_are_utf16_and_overlap_is_exclusive_at_the_edges() -> None:
    text = "🌊 港 `code` after"
    (span,) = non_prose(text, Kind.MARKDOWN)
    start = utf16_length(text[: text.index("`")])
    assert span == (start, start + len("`code`"))
    assert overlaps([span], span[0] - 3, span[0] + 1)
    assert not overlaps([span], span[1], span[1] + 5)  # touches the end only
    assert overlaps([span], span[0], span[0])  # an empty span inside
