"""Password hashing: bcrypt through libpass, run off the event loop.

bcrypt reads at most 72 bytes of a password. bcrypt 5 raises on longer input instead of
truncating, and libpass 1.9 passes the password through unchanged (it only truncates to
dodge the old ``$2a$`` wraparound bug, which bcrypt 5 does not have). Our choice: reject,
never truncate nor pre-hash. ``Credentials`` refuses passwords over 72 UTF-8 bytes with a
clear message; ``hash`` raises ``ValueError`` for them; ``verify`` answers False (no stored
hash can match one) after spending the same time as a real check.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

import bcrypt as pyca_bcrypt
from passlib.hash import bcrypt as passlib_bcrypt
from pydantic import SecretStr

log = logging.getLogger(__name__)

MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_BYTES = 72  # bcrypt's own limit

_T = TypeVar("_T")


def bcrypt_problem(password: str) -> str | None:
    """Why bcrypt cannot take ``password`` as it is, or None when it can."""
    try:
        size = len(password.encode("utf-8"))
    except UnicodeEncodeError:  # lone surrogates: valid JSON, not valid text
        return "password must be valid Unicode text"
    if size > MAX_PASSWORD_BYTES:
        return f"password must be at most {MAX_PASSWORD_BYTES} bytes in UTF-8 (a bcrypt limit)"
    if "\x00" in password:  # bcrypt would stop reading at the first NUL
        return "password must not contain NUL characters"
    return None


def _plain(password: str | SecretStr) -> str:
    return password.get_secret_value() if isinstance(password, SecretStr) else password


class PasswordHasher:
    """bcrypt at a fixed cost; every hash and check runs in a worker thread."""

    def __init__(self, rounds: int = 12, *, max_concurrency: int | None = None) -> None:
        # truncate_error: never let a long password be cut silently, whatever the backend.
        self._bcrypt: Any = passlib_bcrypt.using(rounds=rounds, truncate_error=True)
        # Load the backend now: libpass self-tests it on first use, better not from
        # several threads at once.
        passlib_bcrypt.get_backend()
        # A well-formed hash at the same cost with a random salt: checking against it
        # costs what a real check costs, so an unknown username does not show in timing.
        self._dummy_hash = pyca_bcrypt.gensalt(rounds).decode("ascii") + "." * 31
        # bcrypt is CPU-bound: cap how many run at once so a burst of logins cannot take
        # every thread of the default executor (DNS lookups and file I/O use it too).
        self._slots = asyncio.Semaphore(max_concurrency or os.cpu_count() or 1)

    async def hash(self, password: str | SecretStr) -> str:
        """A new bcrypt hash. ``ValueError`` for a password bcrypt cannot take (see module)."""
        password = _plain(password)
        problem = bcrypt_problem(password)
        if problem is not None:
            raise ValueError(problem)
        result: str = await self._run(self._bcrypt.hash, password)
        return result

    async def verify(self, password: str | SecretStr, password_hash: str | None) -> bool:
        """True when ``password`` matches. Pass None for an unknown user: same cost, False."""
        password = _plain(password)
        if password_hash is None or bcrypt_problem(password) is not None:
            await self._run(self._check, "not-a-password", self._dummy_hash)
            return False
        return await self._run(self._check, password, password_hash)

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made at another cost: rehash it after a good login."""
        try:
            return bool(self._bcrypt.needs_update(password_hash))
        except ValueError:
            return True

    def _check(self, password: str, password_hash: str) -> bool:
        try:
            return bool(self._bcrypt.verify(password, password_hash))
        except ValueError:
            # A corrupt stored hash: refuse the login, say so without echoing anything.
            log.warning("a stored password hash is not a valid bcrypt hash")
            return False

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        async with self._slots:
            return await asyncio.to_thread(fn, *args)
