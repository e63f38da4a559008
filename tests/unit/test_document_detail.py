"""gateway/schemas.py: ``DocumentDetail.of`` gives each live suggestion its code point span
beside its UTF-16 one (the store keeps the UTF-16 spans only), in the order of the text."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from amplify_stream.events.documents import LiveSuggestionRecord
from amplify_stream.gateway.schemas import DocumentDetail
from amplify_stream.store.records import DocumentRecord
from amplify_stream.text.edits import utf16_length

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def detail(text: str, spans: list[tuple[int, int]]) -> DocumentDetail:
    """A document whose suggestions quote ``text[start:end]`` for each code point span."""
    suggestions = [
        LiveSuggestionRecord(
            id=f"s{n}",
            focus="plot",
            quote=text[start:end],
            message="m",
            start_utf16=utf16_length(text[:start]),
            end_utf16=utf16_length(text[:end]),
        ).model_dump()
        for n, (start, end) in enumerate(spans)
    ]
    record = DocumentRecord(
        doc_id="d", user_id="u", title=None, focus=("plot",), text=text, version=1,
        suggestions=tuple(suggestions), created_at=NOW, updated_at=NOW,
    )  # fmt: skip
    return DocumentDetail.of(record)


def test_spans_after_astral_characters() -> None:
    text = "🌊🌊 a 𝄞 b\nc 🎻"
    # Out of order, one at the very end, one empty, two at one place.
    doc = detail(text, [(11, 12), (9, 10), (3, 4), (12, 12), (0, 1), (0, 2), (5, 6)])
    got = [(s.start, s.end, s.start_utf16, s.end_utf16) for s in doc.suggestions]
    assert got == [(0, 1, 0, 2), (0, 2, 0, 4), (3, 4, 5, 6), (5, 6, 7, 9), (9, 10, 12, 13),
                   (11, 12, 14, 16), (12, 12, 16, 16)]  # fmt: skip
    for s in doc.suggestions:
        assert text[s.start : s.end] == s.quote


@given(st.text(), st.data())
def test_every_quote_slices_out_of_the_text(text: str, data: st.DataObject) -> None:
    points = st.integers(0, len(text))
    spans = [tuple(sorted(data.draw(st.tuples(points, points)))) for _ in range(3)]
    doc = detail(text, spans)  # type: ignore[arg-type]
    assert len(doc.suggestions) == 3
    for s in doc.suggestions:
        assert text[s.start : s.end] == s.quote
        assert utf16_length(text[: s.start]) == s.start_utf16
