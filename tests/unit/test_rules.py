"""Each rule of the offline analyzer's catalogue on its own examples: the flagged one at
its exact span, the clean one silent, and its replacement, applied, sound and silent."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from amplify_stream.providers.base import SuggestionFound
from amplify_stream.providers.local.analysis import ANALYZERS
from amplify_stream.providers.local.document import Document
from amplify_stream.providers.local.rules import RULES, Rule, markdown, shown

_MARKED = re.compile(r"\[\[(.+?)\]\]", re.DOTALL)


def found(text: str, rule: Rule) -> list[SuggestionFound]:
    report = ANALYZERS[rule.focus](Document(text))
    return [s for s in report.suggestions if s.rule == rule.id]


@pytest.mark.parametrize("rule", RULES.values(), ids=list(RULES))
def test_a_rule_flags_its_example_at_the_span(rule: Rule) -> None:
    match = _MARKED.search(rule.flagged)
    assert match is not None, "the flagged example marks its span"
    text = rule.flagged[: match.start()] + match.group(1) + rule.flagged[match.end() :]
    start = match.start()
    hits = found(text, rule)
    assert [(s.start, s.quote) for s in hits] == [(start, match.group(1))]
    assert all(s.focus == rule.focus for s in hits)
    replacement = hits[0].replacement
    if replacement is not None:
        fixed = text[:start] + replacement + text[start + len(match.group(1)) :]
        assert "  " not in fixed and " ," not in fixed
        assert found(fixed, rule) == []


@pytest.mark.parametrize("rule", RULES.values(), ids=list(RULES))
def test_a_rule_leaves_its_clean_example_alone(rule: Rule) -> None:
    assert found(rule.clean, rule) == []


def test_rules_off_by_default_are_not_shown() -> None:
    assert not shown("plot.filler") and shown("plot.passive") and shown(None)
    assert shown("model.plot")  # a provider's own rule, outside the catalogue


def test_the_committed_catalogue_is_up_to_date() -> None:
    committed = Path(__file__).resolve().parents[2] / "docs" / "rules.md"
    assert committed.read_text("utf-8") == markdown(), "run `amplify-stream rules`"
