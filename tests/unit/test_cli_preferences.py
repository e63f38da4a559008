"""``amplify-stream preferences``: what its options ask to change, and how it shows them
(against a service: tests/e2e/test_cli.py)."""

from __future__ import annotations

import pytest

from amplify_stream.cli import _parser
from amplify_stream.client import KEEP, PreferenceChange, Preferences
from amplify_stream.commands.preferences import parse_change, render


def change(*argv: str) -> PreferenceChange:
    return parse_change(_parser().parse_args(["preferences", *argv]))


def test_no_option_changes_nothing() -> None:
    assert change().empty
    assert change("--url", "http://x", "--json").empty


def test_the_options_name_the_change() -> None:
    asked = change(
        "--rule-off",
        "plot.passive",
        "--rule-off",
        "plot.filler",
        "--rule-on",
        "setting.opening",
        "--word",
        "Maura",
        "--remove-word",
        "Zed",
    )
    assert asked == PreferenceChange(
        rules_off=("plot.passive", "plot.filler"),
        rules_on=("setting.opening",),
        words=("Maura",),
        remove_words=("Zed",),
        focus=KEEP,
    )
    assert not asked.empty
    assert change("--focus", "plot,dialogue", "--focus", "setting").focus == [
        "plot",
        "dialogue",
        "setting",
    ]
    assert change("--focus", "all").focus is None


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--rule-off", "plot.passive", "--rule-on", "plot.passive"], "both name plot.passive"),
        (["--word", "Mara", "--remove-word", "Mara"], "both name Mara"),
        (["--focus", "all,plot"], "--focus all goes alone"),
        (["--focus", "plots"], "unknown --focus plots"),
        (["--focus", ","], "names no area"),
    ],
)
def test_contradictions_are_refused(argv: list[str], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        change(*argv)


def test_render() -> None:
    shown = render(Preferences(("plot.passive", "setting.opening"), ("Maura",), None, 2, "T"))
    assert shown.splitlines() == [
        "rules off  plot.passive, setting.opening",
        "words      Maura",
        "focus      all areas",
        "revision   2, updated T",
    ]
    empty = render(Preferences(focus=("plot",))).splitlines()
    assert empty == ["rules off  none", "words      none", "focus      plot", "revision   0"]
