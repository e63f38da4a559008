"""Enhancement providers behind one port (``base``); ``create_provider`` picks one."""

from __future__ import annotations

from amplify_stream.config import Settings
from amplify_stream.providers.base import EnhancementProvider


def create_provider(settings: Settings) -> EnhancementProvider:
    if settings.enhancement_provider_name == "gemini":
        from amplify_stream.providers.gemini import GeminiProvider

        return GeminiProvider(settings)
    from amplify_stream.providers.local import LocalProvider

    return LocalProvider(settings)
