"""All settings, from the environment (prefix ``AMPLIFY_``) or a ``.env`` file.

Built once at the entry point and passed down; nothing else reads ``os.environ``.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Focus = Literal["plot", "character", "dialogue", "setting"]
ALL_FOCUS: tuple[Focus, ...] = ("plot", "character", "dialogue", "setting")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AMPLIFY_", env_file=".env", extra="ignore", populate_by_name=True
    )

    env: Literal["development", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("./data")
    database_url: str | None = None
    log_level: str = "INFO"

    # The bus
    bus: Literal["memory", "kafka"] = "memory"
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = "amplify"
    topic_partitions: int = 3
    # Linger for the low-latency stream producer; a few ms batches a burst of deltas.
    stream_linger_ms: int = 2

    # Accounts
    jwt_secret: SecretStr | None = None
    jwt_issuer: str = "amplify-stream"
    jwt_audience: str = "amplify-stream"
    access_token_ttl_s: int = 3600
    bcrypt_rounds: int = Field(default=12, ge=4, le=31)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Limits
    max_story_chars: int = 50_000
    max_title_chars: int = 200
    max_ws_frame_bytes: int = 256 * 1024

    # Enhancement
    enhancer_provider: Literal["auto", "gemini", "local"] = "auto"
    enhancer_concurrency: int = 16
    # Stories one narrator holds at once (each waits for its sentences; cheap), and how
    # many of them synthesize at the same moment.
    narrator_stories: int = 1024
    narrator_concurrency: int = 4
    gemini_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("GEMINI_API_KEY", "AMPLIFY_GEMINI_API_KEY")
    )
    gemini_model: str = "gemini-2.5-flash"
    gemini_base_url: str | None = None
    gemini_retry_attempts: int = 4
    gemini_retry_initial_delay_s: float = 0.5
    gemini_retry_max_delay_s: float = 8.0
    # No piece from the provider for this long ends the story as failed.
    gemini_idle_timeout_s: float = 30.0
    # Pacing of the offline analyzer's rewrite, so it streams like a model does.
    local_piece_delay_ms: int = 15

    # Fake Gemini (tests, benchmarks, sandbox)
    fake_gemini_host: str = "127.0.0.1"
    fake_gemini_port: int = 8085
    fake_gemini_first_token_ms: int = 50
    fake_gemini_tokens_per_s: float = 200.0
    fake_gemini_fault: Literal["none", "status", "midstream", "stall"] = "none"
    fake_gemini_fault_status: int = 503
    fake_gemini_fault_count: int = 1_000_000
    # Fake edge-tts (tests, benchmarks, sandbox)
    fake_edge_tts_host: str = "127.0.0.1"
    fake_edge_tts_port: int = 8086
    fake_edge_tts_fault: Literal[
        "none", "forbidden", "rate_limited", "unavailable", "no_audio", "stall", "drop"
    ] = "none"
    fake_edge_tts_fault_count: int = 1_000_000

    # Speech
    speech_provider: Literal["auto", "edge", "espeak"] = "auto"
    # None: the provider's own default ("en-US-AriaNeural" for edge, "en-us" for espeak).
    voice: str | None = None
    edge_tts_url: str | None = None
    # Where narration files go; None means data_dir / "audio".
    audio_dir: Path | None = None
    tts_retry_attempts: int = 3
    tts_retry_initial_delay_s: float = 0.5
    tts_timeout_s: float = 20.0
    espeak_rate_wpm: int = 175

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [o.strip() for o in value.split(",") if o.strip()]
        return value

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        if self.jwt_secret is None:
            if self.env == "production":
                raise ValueError("AMPLIFY_JWT_SECRET is required in production")
            # Development only: tokens do not survive a restart, which is what we want.
            self.jwt_secret = SecretStr(secrets.token_urlsafe(48))
        if self.env == "production" and len(self.jwt_secret.get_secret_value()) < 32:
            raise ValueError("AMPLIFY_JWT_SECRET must be at least 32 characters in production")
        if not self.cors_origins:
            self.cors_origins = [self.public_origin]
        if self.audio_dir is None:
            self.audio_dir = self.data_dir / "audio"
        return self

    @property
    def public_origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'amplify.db'}"

    @property
    def effective_audio_dir(self) -> Path:
        """Where narration files go (``audio_dir``, else ``data_dir / "audio"``)."""
        return self.audio_dir or self.data_dir / "audio"

    @property
    def enhancement_provider_name(self) -> Literal["gemini", "local"]:
        if self.enhancer_provider == "auto":
            return "gemini" if self.gemini_api_key else "local"
        return self.enhancer_provider

    def topic(self, name: str) -> str:
        """The full topic name: ``topic("stories")`` -> ``amplify.stories.v1``."""
        return f"{self.topic_prefix}.{name}.v1"
