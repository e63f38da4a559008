"""What every event shares: the schema version, the focuses, times, errors."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

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


class Usage(_Model):
    input_tokens: int = 0
    output_tokens: int = 0


class ErrorInfo(_Model):
    code: str
    message: str
