"""The fakes' own settings (``amplify-stream fake gemini|edge-tts``, tests, benchmarks),
apart from the service's: nothing in production reads them. Environment names keep the
service's prefix (``AMPLIFY_FAKE_GEMINI_PORT``...), and a ``.env`` file is read as well."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class FakeSettings(BaseSettings):
    """Their defaults are written here only: ``FakeGeminiConfig`` and ``FakeEdgeConfig``
    take them."""

    model_config = SettingsConfigDict(env_prefix="AMPLIFY_", env_file=".env", extra="ignore")

    fake_gemini_host: str = "127.0.0.1"
    fake_gemini_port: int = 8085
    fake_gemini_first_token_ms: int = 50
    fake_gemini_tokens_per_s: float = 200.0
    # Tokens per streamed chunk: 1 is the finest (and, for the client SDK, the costliest)
    # pacing; Gemini's own streams carry several tokens per chunk.
    fake_gemini_tokens_per_chunk: int = Field(default=1, ge=1)
    fake_gemini_fault: Literal["none", "status", "midstream", "stall", "bad_object", "misquote"] = (
        "none"
    )
    fake_gemini_fault_status: int = 503
    fake_gemini_fault_count: int = 1_000_000
    fake_edge_tts_host: str = "127.0.0.1"
    fake_edge_tts_port: int = 8086
    fake_edge_tts_fault: Literal[
        "none", "forbidden", "rate_limited", "unavailable", "no_audio", "stall", "drop"
    ] = "none"
    fake_edge_tts_fault_count: int = 1_000_000

    def of(self, prefix: str) -> dict[str, Any]:
        """The settings of one fake (``prefix``: ``"fake_gemini_"``), named as its config
        names them."""
        return {
            name.removeprefix(prefix): getattr(self, name)
            for name in type(self).model_fields
            if name.startswith(prefix)
        }


# The defaults, whatever the environment says: the configs' own defaults.
DEFAULTS = FakeSettings.model_construct()
