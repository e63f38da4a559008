"""Rules the settings must follow: origin syntax everywhere, and what production refuses.

Kept apart from ``config.py`` so the rules can be read (and tested) on one screen.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from amplify_stream.config import Settings

# RFC 7518 section 3.2: an HS256 key must be at least as long as the hash output.
MIN_SECRET_BYTES = 32
# Catches "x" * 32, "changeme" * 4 and the like; `openssl rand -hex 32` has about 16.
MIN_SECRET_DISTINCT_CHARS = 10
ANY_ORIGIN = "*"


def normalize_origin(value: str) -> str:
    """``scheme://host[:port]`` in lower case, as browsers send it; ``ValueError`` otherwise."""
    value = value.strip()
    if value == ANY_ORIGIN:
        return value
    parts = urlsplit(value.rstrip("/"))
    try:
        parts.port  # noqa: B018 - parsing it is the check ("https://x:abc" raises)
    except ValueError:
        raise ValueError(f"CORS origin {value!r} has an invalid port") from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        raise ValueError(f"CORS origin {value!r} is not scheme://host[:port]")
    return f"{parts.scheme}://{parts.netloc}".lower()


def is_loopback_origin(origin: str) -> bool:
    host = urlsplit(origin).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def secret_problem(secret: str) -> str | None:
    """Why ``secret`` is too weak to sign tokens with, or None."""
    if len(secret.encode("utf-8")) < MIN_SECRET_BYTES:
        return f"AMPLIFY_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes"
    if len(set(secret)) < MIN_SECRET_DISTINCT_CHARS:
        return (
            f"AMPLIFY_JWT_SECRET must have at least {MIN_SECRET_DISTINCT_CHARS} different "
            "characters (use `openssl rand -hex 32`)"
        )
    return None


def production_problems(settings: Settings) -> list[str]:
    """Everything production refuses to start with; empty in development.

    Key files are only named here; they are read (and refused when unreadable) when the
    gateway starts, so workers, which never touch tokens, do not need them.
    """
    if settings.env != "production":
        return []
    problems = []
    if settings.jwt_algorithm == "HS256":
        if settings.jwt_secret is None:
            problems.append("AMPLIFY_JWT_SECRET is required in production")
        else:
            problem = secret_problem(settings.jwt_secret.get_secret_value())
            if problem is not None:
                problems.append(problem)
    elif settings.jwt_private_key_file is None and settings.jwt_public_key_file is None:
        problems.append(
            f"AMPLIFY_JWT_ALGORITHM={settings.jwt_algorithm} needs AMPLIFY_JWT_PRIVATE_KEY_FILE "
            "(to issue tokens) or AMPLIFY_JWT_PUBLIC_KEY_FILE (to check them only)"
        )
    for origin in settings.cors_origins:
        if origin == ANY_ORIGIN:
            problems.append("AMPLIFY_CORS_ORIGINS must not be * in production")
        elif not origin.startswith("https://") and not is_loopback_origin(origin):
            problems.append(f"CORS origin {origin} must be https:// in production")
    return problems
