"""What the fake Gemini is told (``FakeGeminiConfig``: pacing, faults) and what it saw
(``FakeGeminiRecord``: every call and its state): shared by the server (``gemini.py``)
and its answers (``gemini_wire.py``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from amplify_stream.fakes.settings import DEFAULTS, FakeSettings

Fault = Literal["none", "status", "midstream", "stall", "bad_object", "misquote"]
CallState = Literal["open", "completed", "failed", "disconnected"]


@dataclass(frozen=True, slots=True)
class FakeGeminiConfig:
    # The defaults of the settings (``fakes/settings.py``) where there is one.
    host: str = DEFAULTS.fake_gemini_host
    port: int = DEFAULTS.fake_gemini_port
    first_token_ms: int = DEFAULTS.fake_gemini_first_token_ms
    tokens_per_s: float = DEFAULTS.fake_gemini_tokens_per_s
    tokens_per_chunk: int = DEFAULTS.fake_gemini_tokens_per_chunk
    fault: Fault = DEFAULTS.fake_gemini_fault
    fault_status: int = DEFAULTS.fake_gemini_fault_status
    fault_count: int = DEFAULTS.fake_gemini_fault_count
    # midstream (streams only; unary calls answer normally): how many chunks go out
    # before the break, and how it breaks: a dropped connection or an error event.
    midstream_after: int = 3
    midstream_style: Literal["abort", "error_event"] = "abort"
    # None accepts any non-empty key (as a sandbox should); a string must match.
    api_key: str | None = None

    def __post_init__(self) -> None:
        if self.tokens_per_s <= 0:
            raise ValueError("tokens_per_s must be positive")
        if self.tokens_per_chunk < 1:
            raise ValueError("tokens_per_chunk must be at least 1")

    @classmethod
    def from_settings(cls, settings: FakeSettings) -> FakeGeminiConfig:
        return cls(**settings.of("fake_gemini_"))


@dataclass(slots=True)
class FakeCall:
    """One model call as the fake saw it."""

    method: str  # "generateContent" or "streamGenerateContent"
    model: str
    body: dict[str, Any]
    status: int = 200
    chunks_sent: int = 0
    state: CallState = "open"
    # Wall-clock seconds, so a test in another process can place the call among its own
    # moments (which call a frozen worker had open, say).
    started_at: float = field(default_factory=time.time)
    ended_at: float | None = None


@dataclass(slots=True)
class FakeGeminiRecord:
    calls: list[FakeCall] = field(default_factory=list)
    rejected: int = 0  # refused before reaching a model: bad key, bad path, bad JSON

    @property
    def requests(self) -> int:
        return len(self.calls)

    def count(self, *, method: str | None = None, state: CallState | None = None) -> int:
        return sum(
            1
            for c in self.calls
            if (method is None or c.method == method) and (state is None or c.state == state)
        )

    @property
    def open_streams(self) -> int:
        return self.count(method="streamGenerateContent", state="open")

    def summary(self) -> dict[str, Any]:
        """What ``GET /_fake/record`` answers."""
        return {
            "requests": self.requests,
            "rejected": self.rejected,
            "open_streams": self.open_streams,
            "open_calls": self.count(state="open"),
            "calls": [
                {
                    "method": c.method,
                    "model": c.model,
                    # Asked for JSON (the analysis), not text (the rewrite).
                    "structured": (c.body.get("generationConfig") or {}).get("responseMimeType")
                    == "application/json",
                    "status": c.status,
                    "chunks_sent": c.chunks_sent,
                    "state": c.state,
                    "started_at": c.started_at,
                    "ended_at": c.ended_at,
                }
                for c in self.calls
            ],
        }
