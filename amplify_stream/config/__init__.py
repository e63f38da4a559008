"""All settings, from the environment (prefix ``AMPLIFY_``) or a ``.env`` file.

Built once at the entry point and passed down; nothing else reads ``os.environ``. The
settings themselves are declared by group in ``groups.py``; the rules they must follow
(production's refusals) in ``rules.py``.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from amplify_stream.config.groups import (
    AuthSettings,
    BusSettings,
    DocumentSettings,
    GeminiSettings,
    LimitsSettings,
    ServiceSettings,
    SpeechSettings,
    WorkerSettings,
)
from amplify_stream.config.rules import production_problems


class Settings(
    ServiceSettings,
    BusSettings,
    AuthSettings,
    LimitsSettings,
    WorkerSettings,
    DocumentSettings,
    GeminiSettings,
    SpeechSettings,
    BaseSettings,
):
    model_config = SettingsConfigDict(
        env_prefix="AMPLIFY_",
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
        # A refused setting must not print the others (secrets, API keys) in its error.
        hide_input_in_errors=True,
    )

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        problems = production_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        if self.jwt_secret is None and self.env == "development":
            # Development only: tokens do not survive a restart, which is what we want.
            self.jwt_secret = SecretStr(secrets.token_urlsafe(48))
        if not self.cors_origins and self.env == "development":
            # The page's own origin. Production: none unless listed (the page needs none).
            self.cors_origins = [self.public_origin]
        if self.audio_dir is None:
            self.audio_dir = self.data_dir / "audio"
        return self

    @property
    def public_origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def effective_audio_dir(self) -> Path:
        """Where narration files go (``audio_dir``, else ``data_dir / "audio"``)."""
        return self.audio_dir or self.data_dir / "audio"

    @property
    def enhancement_provider_name(self) -> Literal["gemini", "local"]:
        if self.enhancer_provider == "auto":
            return "gemini" if self.gemini_api_key else "local"
        return self.enhancer_provider
