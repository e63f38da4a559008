"""The writer's own preferences as the client holds them (docs/protocol.md section 6, "The
writer's say"): the rules they turned off everywhere, the words they vouch for, the focus
a new document or story reads. ``GET /v1/me/preferences`` reads them, ``PUT`` replaces
them whole, so a ``PreferenceChange`` is made on what was read and written back at the
revision read (``AmplifyClient.change_preferences``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

PATH = "/v1/me/preferences"


class Keep(enum.Enum):
    """The focus left as it is (``None`` already means all four areas)."""

    KEEP = "keep"


KEEP = Keep.KEEP


@dataclass(frozen=True, slots=True)
class Preferences:
    rules_off: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    # None: all four areas.
    focus: tuple[str, ...] | None = None
    revision: int = 0
    updated_at: str | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Preferences:
        focus = body.get("focus")
        return cls(
            rules_off=tuple(body.get("rules_off") or ()),
            words=tuple(body.get("words") or ()),
            focus=None if focus is None else tuple(focus),
            revision=int(body.get("revision") or 0),
            updated_at=body.get("updated_at"),
        )

    def body(self) -> dict[str, Any]:
        """The ``PUT`` that stores these, made from their ``revision`` (a change made
        elsewhere since is a 409 ``conflict``: nobody's change is lost)."""
        return {
            "rules_off": list(self.rules_off),
            "words": list(self.words),
            "focus": None if self.focus is None else list(self.focus),
            "revision": self.revision,
        }

    def same_as(self, other: Preferences) -> bool:
        """What the service keeps is the same (order aside: it stores them sorted)."""
        return (
            set(self.rules_off) == set(other.rules_off)
            and set(self.words) == set(other.words)
            and self.focus == other.focus
        )


@dataclass(frozen=True, slots=True)
class PreferenceChange:
    """Rules turned off or on, words added or taken away (taken away wins), the focus set
    (``KEEP``: left as it is); what it does not name stays as another client left it."""

    rules_off: tuple[str, ...] = ()
    rules_on: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    remove_words: tuple[str, ...] = ()
    focus: Sequence[str] | Keep | None = KEEP

    @property
    def empty(self) -> bool:
        lists = (self.rules_off, self.rules_on, self.words, self.remove_words)
        return not any(lists) and isinstance(self.focus, Keep)

    def applied(self, prefs: Preferences) -> Preferences:
        """``prefs`` changed (at the same revision: their ``body`` says which one the
        change was made from)."""
        return replace(
            prefs,
            rules_off=_edited(prefs.rules_off, self.rules_off, self.rules_on),
            words=_edited(prefs.words, self.words, self.remove_words),
            focus=prefs.focus if isinstance(self.focus, Keep) else _focus(self.focus),
        )


def _edited(have: tuple[str, ...], add: Iterable[str], remove: Iterable[str]) -> tuple[str, ...]:
    gone = set(remove)
    kept = [x for x in have if x not in gone]
    return tuple(dict.fromkeys([*kept, *(x for x in add if x not in gone)]))


def _focus(focus: Sequence[str] | None) -> tuple[str, ...] | None:
    return None if focus is None else tuple(dict.fromkeys(focus))
