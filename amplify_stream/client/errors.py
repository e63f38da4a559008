"""The client's one exception: an error answer of the service with docs/protocol.md's code."""

from __future__ import annotations

from typing import Any

import aiohttp

HTTP_CODES = {401: "unauthorized", 404: "not_found", 429: "rate_limited", 503: "unavailable"}


class ClientError(Exception):
    """An error answer of the service (or a lost connection) with docs/protocol.md's ``code``."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = False,
        story_id: str | None = None,
        details: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.retryable = retryable
        self.story_id = story_id
        self.details = details
        # Seconds to wait before trying again (``rate_limited``), when the service says.
        self.retry_after = retry_after

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> ClientError:
        return cls(
            str(event.get("code", "internal")),
            str(event.get("message", "")),
            retryable=bool(event.get("retryable", False)),
            story_id=event.get("story_id"),
            retry_after=event.get("retry_after"),
        )


async def http_error(res: aiohttp.ClientResponse) -> ClientError:
    try:
        body = await res.json(content_type=None)
        error = body["error"]
        return ClientError(
            str(error["code"]),
            str(error.get("message", "")),
            status=res.status,
            retryable=bool(error.get("retryable", False)),
            details=error.get("details"),
            retry_after=_seconds(res.headers.get("Retry-After")),
        )
    except (ValueError, KeyError, TypeError):
        code = HTTP_CODES.get(res.status, "internal")
        return ClientError(code, f"HTTP {res.status} {res.reason}", status=res.status)


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare enough to leave to the caller's own backoff
