"""The small exception vocabulary, mapped to docs/protocol.md's error codes in one place."""

from __future__ import annotations

from typing import Any


class AmplifyError(Exception):
    """Base: every error a client may see. ``code`` is docs/protocol.md's error code."""

    code = "internal"
    http_status = 500
    retryable = False

    def __init__(self, message: str, *, details: Any = None, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.details = details
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        if self.retryable:
            error["retryable"] = True
        return {"error": error}


class InvalidMessage(AmplifyError):
    code, http_status = "invalid_message", 400


class InvalidStory(AmplifyError):
    code, http_status = "invalid_story", 422


class StoryTooLarge(AmplifyError):
    code, http_status = "story_too_large", 413


class Unauthorized(AmplifyError):
    code, http_status = "unauthorized", 401


class Forbidden(AmplifyError):
    """A request from a page whose origin is not allowed (the WebSocket upgrade)."""

    code, http_status = "forbidden", 403


class NotFound(AmplifyError):
    code, http_status = "not_found", 404


class Conflict(AmplifyError):
    code, http_status = "conflict", 409


class UnsupportedMediaType(AmplifyError):
    code, http_status = "unsupported_media_type", 415


class RateLimited(AmplifyError):
    code, http_status, retryable = "rate_limited", 429, True


class CursorExpired(AmplifyError):
    code, http_status = "cursor_expired", 410


class NotReady(AmplifyError):
    """A dependency (the bus, the store) is down: nothing was accepted, try again."""

    code, http_status, retryable = "unavailable", 503, True


class ProviderUnavailable(AmplifyError):
    code, http_status, retryable = "provider_unavailable", 503, True


class ProviderError(AmplifyError):
    code, http_status = "provider_error", 502


class TtsUnavailable(AmplifyError):
    code, http_status, retryable = "tts_unavailable", 503, True


class Cancelled(AmplifyError):
    code, http_status = "cancelled", 409
