"""Security headers on every answer, the WebSocket origin check, and start-up refusals.

The headers go on in ``on_response_prepare``, not in a middleware: that signal fires for
every response the app prepares, including WebSocket handshakes, SSE streams, files and
the error answers of aiohttp's own exceptions. A handler that sets one of these headers
itself (a page that needs another Content-Security-Policy) keeps its own value.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from aiohttp import web

from amplify_stream.config import Settings
from amplify_stream.config.groups import ServiceSettings
from amplify_stream.config.rules import ANY_ORIGIN, production_problems
from amplify_stream.errors import Forbidden

# What the live editor page needs: its own scripts and styles, the API and the socket,
# and audio from the API or from blobs it assembles. Nothing inline, no framing.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self' ws: wss:",
        "media-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HSTS = "max-age=31536000; includeSubDomains"


def security_headers(settings: ServiceSettings) -> dict[str, str]:
    headers = {
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    }
    if settings.env == "production":
        # Only in production: a browser remembers it, and development runs on plain http.
        headers["Strict-Transport-Security"] = HSTS
    return headers


class _AddHeaders:
    def __init__(self, headers: Mapping[str, str]) -> None:
        self._headers = dict(headers)

    async def __call__(self, request: web.Request, response: web.StreamResponse) -> None:
        for name, value in self._headers.items():
            response.headers.setdefault(name, value)
        if response.content_type == "application/json":
            # API answers are per user: no shared cache, no back/forward cache copy.
            response.headers.setdefault("Cache-Control", "no-store")


def install(app: web.Application, settings: Settings) -> None:
    """Refuse unsafe production settings, then add the headers to every response."""
    problems = production_problems(settings)
    if problems:
        # Settings refuse these already; this catches settings built without validation.
        raise ValueError("; ".join(problems))
    app.on_response_prepare.append(_AddHeaders(security_headers(settings)))


def origin_allowed(request: web.Request, allowed: list[str]) -> bool:
    """Browsers send ``Origin`` and do not apply CORS to WebSockets: check it here.

    No ``Origin``: not a browser, nothing to protect. Same host as the request: the page
    this gateway serves. Otherwise it must be in the allowlist (``*`` allows any).
    """
    origin = request.headers.get("Origin")
    if origin is None or ANY_ORIGIN in allowed:
        return True
    normalized = origin.strip().rstrip("/").lower()
    if normalized in allowed:
        return True
    parts = urlsplit(normalized)
    # The gorilla/websocket rule: the Origin's host:port equals the Host header.
    return parts.scheme in ("http", "https") and parts.netloc == request.host.lower()


def require_allowed_origin(request: web.Request, allowed: list[str]) -> None:
    if not origin_allowed(request, allowed):
        raise Forbidden("this origin may not open the stream")
