"""The editor's settings for the language server, under ``amplify`` (initialization
options, ``workspace/didChangeConfiguration``, ``workspace/configuration``):

- ``focus``: the areas a new document is checked for (``doc.open``'s ``focus``);
- ``disabledRules``: rule ids the writer wants off; added to their preferences on the
  service, so they follow them into every client.

Read tolerantly: an editor's settings file is typed by hand, so a wrong value is named to
the writer and left out, never sent for the service to refuse (a refused ``doc.open``
would be tried again and again)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amplify_stream.events import ALL_FOCUS

SECTION = "amplify"


@dataclass(frozen=True)
class EditorSettings:
    focus: tuple[str, ...] | None = None  # None: the service's choice (all four, or the user's)
    disabled_rules: tuple[str, ...] = ()


def section_of(settings: Any) -> Any:
    """The ``amplify`` section of what an editor sent whole (``{"amplify": {...}}``), or
    None when it holds none."""
    return settings.get(SECTION) if isinstance(settings, dict) else None


def read_settings(raw: Any) -> tuple[EditorSettings, list[str]]:
    """The settings of an ``amplify`` section, and what was wrong in it."""
    if raw is None:
        return EditorSettings(), []
    if not isinstance(raw, dict):
        return EditorSettings(), [f"the {SECTION} settings are not an object"]
    problems: list[str] = []
    return EditorSettings(_focus(raw.get("focus"), problems), _rules(raw, problems)), problems


def _focus(value: Any, problems: list[str]) -> tuple[str, ...] | None:
    if value is None or value == []:
        return None
    areas = ", ".join(ALL_FOCUS)
    if not isinstance(value, list) or not all(v in ALL_FOCUS for v in value):
        problems.append(f"focus must be a list of {areas}; ignored")
        return None
    return tuple(dict.fromkeys(value))  # each once, as the service requires


def _rules(raw: dict[str, Any], problems: list[str]) -> tuple[str, ...]:
    value = raw.get("disabledRules")
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.append("disabledRules must be a list of rule ids; ignored")
        return ()
    rules = [v.strip() for v in value if isinstance(v, str) and v.strip()]
    if len(rules) != len(value):
        problems.append("disabledRules holds something that is not a rule id; left out")
    return tuple(dict.fromkeys(rules))
