"""The editor's ``amplify`` settings, read tolerantly: what is wrong is named and left out."""

from __future__ import annotations

from amplify_stream.lsp.settings import EditorSettings, read_settings, section_of


def test_settings_are_read_and_what_is_wrong_is_named() -> None:
    raw = {"focus": ["dialogue", "plot", "dialogue"], "disabledRules": ["plot.filler", " a.b "]}
    assert read_settings(raw) == (
        EditorSettings(focus=("dialogue", "plot"), disabled_rules=("plot.filler", "a.b")),
        [],
    )
    assert read_settings(None) == (EditorSettings(), [])
    assert read_settings({"focus": []}) == (EditorSettings(), [])

    settings, problems = read_settings({"focus": ["plot", "romance"], "disabledRules": [3, "x.y"]})
    assert settings == EditorSettings(focus=None, disabled_rules=("x.y",))
    assert len(problems) == 2 and "focus" in problems[0] and "disabledRules" in problems[1]
    assert read_settings("plot")[1] == ["the amplify settings are not an object"]


def test_the_section_of_a_whole_settings_object() -> None:
    assert section_of({"amplify": {"focus": ["plot"]}, "other": 1}) == {"focus": ["plot"]}
    assert section_of({"other": 1}) is None
    assert section_of(None) is None
