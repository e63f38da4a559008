"""What every event shares: the schema version, the focuses, times, errors."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

SCHEMA_VERSION = "1"

# The craft areas a suggestion is about (a story's ``focus`` picks among them).
Focus = Literal["plot", "character", "dialogue", "setting"]
ALL_FOCUS: tuple[Focus, ...] = ("plot", "character", "dialogue", "setting")


# The formatted second of the last stamp: every event is stamped, most within the second
# of the one before, and formatting a datetime is most of a small event's encoding.
_second: tuple[int, str] = (-1, "")


def now_rfc3339() -> str:
    """RFC 3339 UTC with milliseconds, as the contract requires."""
    global _second
    second, ms = divmod(time.time_ns() // 1_000_000, 1000)
    if second != _second[0]:
        _second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{_second[1]}.{ms:03d}Z"


def ms_since(at: str) -> float:
    """Milliseconds from an event's ``at`` until now (never negative: clocks differ)."""
    started = datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()
    return max(0.0, (time.time() - started) * 1000)


StoryStatus = Literal["completed", "failed", "cancelled"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class ClientModel(_Model):
    """Base of everything a client sends: the socket's frames (docs/protocol.md sections
    1 and 6) and the HTTP bodies and queries. Strict, as the contract's conventions say:
    an unknown field is refused, and so is a value of the wrong JSON type, never
    converted (``"rewrite": "yes"`` is not true, a ``version`` of ``"3"`` is not 3). The
    exceptions override ``model_config`` and say why."""

    model_config = ConfigDict(extra="forbid", strict=True)


def _each_once(focus: list[Focus]) -> list[Focus]:
    if len(set(focus)) != len(focus):
        raise PydanticCustomError("unique_items", "names each area at most once")
    return focus


# What a client picks of the four areas: at least one, each at most once (``uniqueItems``
# in the schema; a duplicate is refused, not dropped).
FocusList = Annotated[
    list[Focus],
    AfterValidator(_each_once),
    Field(min_length=1, json_schema_extra={"uniqueItems": True}),
]


class Usage(_Model):
    input_tokens: int = 0
    output_tokens: int = 0


class ErrorInfo(_Model):
    code: str
    message: str
