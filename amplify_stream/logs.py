"""Logging set-up, with a filter that keeps credentials out of every line.

Tokens travel in headers, in the WebSocket subprotocol list and in ``?access_token=``;
aiohttp logs some of those (its access line prints the query string; a subprotocol
mismatch prints the client's list). The filter sits on the handler, so it sees every
record that reaches it, whichever logger (ours or a library's) wrote it.
"""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
REDACTED = "[REDACTED]"

# Names whose values are secrets, in JSON/reprs ("password": "...") and in queries/forms.
_SECRET_KEYS = r"password|passwd|access_token|refresh_token|token|secret|jwt_secret|api_key"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization: Bearer <t>, and the subprotocol "bearer.<t>". Eight characters at
    # least, so prose ("a bearer token is required") stays readable.
    (re.compile(r"(?i)\b(bearer)([ \t]+|\.)[A-Za-z0-9\-._~+/]{8,}=*"), rf"\1\2{REDACTED}"),
    # JWS/JWE compact form: a JSON header always encodes to "eyJ"; and any three long
    # base64url segments.
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_.-]*"), REDACTED),
    (re.compile(r"\b[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}"), REDACTED),
    # bcrypt hashes (the store's debug logs print query parameters): offline guessing.
    (re.compile(r"\$2[abxy]?\$\d{2}\$[./A-Za-z0-9]{53}"), REDACTED),
    # ?access_token=... and password=... in URLs and form bodies.
    (
        re.compile(r"(?i)\b(access_token|refresh_token|password|api_key)=[^&\s\"',;]+"),
        rf"\1={REDACTED}",
    ),
    # "password": "..." (JSON) and 'password': '...' (Python reprs), escapes included.
    (
        re.compile(rf"(?i)([\"'])({_SECRET_KEYS})\1(\s*:\s*)([\"'])(?:\\.|(?!\4).)*\4"),
        rf"\1\2\1\3\4{REDACTED}\4",
    ),
)

# Attributes every LogRecord has; anything else came in through ``extra=``.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "story_id",
}


def redact(text: str) -> str:
    """``text`` with every credential-looking piece replaced by ``[REDACTED]``."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites a record's message, its ``extra`` strings and its traceback; drops nothing."""

    def __init__(self) -> None:
        super().__init__()
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging reports it, without the secrets
            message = f"{record.msg} {record.args}"
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            # Formatted here so the cached text handlers reuse is the redacted one.
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for name, value in vars(record).items():
            if name not in _STANDARD_ATTRS:
                setattr(record, name, _redact_value(value))
        return True


def _redact_value(value: object) -> object:
    # aiohttp's access logger passes headers as a dict of strings in ``extra``.
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact(v) if isinstance(v, str) else v for k, v in value.items()}
    return value


# The story a task works on: set where a story's work starts (a worker's record, a
# socket's watcher), so every line logged under it names the story.
story_id_var: ContextVar[str | None] = ContextVar("story_id", default=None)


class StoryContextFilter(logging.Filter):
    """Adds ``story_id`` to each record (from ``extra=`` or from the current task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "story_id", None) is None:
            record.story_id = story_id_var.get()
        return True


def configure_logging(
    level: str, *, stream: TextIO | None = None, json_lines: bool = False
) -> logging.Handler:
    """One redacting handler on the root logger; returns it (tests remove it again).
    ``json_lines``: one JSON object per line (time, level, logger, message, story_id...)."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    if json_lines:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(story_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(StoryContextFilter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler
