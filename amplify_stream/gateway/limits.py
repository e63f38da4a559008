"""Hard limits of the gateway: stories per user (a rate, and how many run at once) and
sign-in attempts (per username and per client address). A refusal is ``RateLimited``
(429 with ``Retry-After`` over HTTP, ``error`` ``rate_limited`` on the socket).

The rates use the ``limits`` library rather than hand-written counters: its moving
window is exact (never more than N in any 60 s, no double burst across the edge of a
fixed window), a hit is atomic under a per-key lock in its asyncio memory storage, its
window stats give the time until a slot frees (the ``Retry-After``), and expired keys
are dropped by the storage itself. The same strategies run on Redis, Memcached or
MongoDB storage, chosen by URL (``limits.storage.storage_from_string``).

Per process: the storage is in memory, so with several gateway processes each counts on
its own and a client spread over N gateways gets up to N times a rate. A shared storage
URL would be a later setting. The running-stories limit needs no storage: it counts the
user's stories not yet completed in the store, which every gateway shares (only two
gateways admitting one user's stories at the same instant could both pass it).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from amplify_stream.config import Settings
from amplify_stream.errors import RateLimited

# When a user's running stories are at the limit nothing says when one will end; a
# story of the offline analyzer takes seconds, so this is the hint given.
RUNNING_RETRY_AFTER_S = 5


class EditRate:
    """Edits per second per user: a token bucket (``rate`` a second, bursts up to
    ``rate``). Written here, not with ``limits``: an edit is the hottest command of the
    gateway (a writer's keystrokes), and the library's memory storage keeps a timestamp
    per hit and sweeps them (milliseconds per hit with many users, by profile), where a
    bucket is two floats per user and O(1) per edit."""

    def __init__(self, rate: int) -> None:
        self._rate = float(rate)
        self._buckets: dict[str, tuple[float, float]] = {}  # user -> (tokens, at)

    def take(self, user_id: str) -> None:
        now = time.monotonic()
        tokens, at = self._buckets.get(user_id, (self._rate, now))
        tokens = min(self._rate, tokens + (now - at) * self._rate)
        if tokens < 1:
            self._buckets[user_id] = (tokens, now)
            raise RateLimited(
                f"more than {int(self._rate)} edits a second; nothing of this edit was applied",
                retry_after=1,
            )
        self._buckets[user_id] = (tokens - 1, now)
        if len(self._buckets) > 100_000:
            # Users idle for a second are full again: forgetting them changes nothing.
            self._buckets = {u: b for u, b in self._buckets.items() if now - b[1] < 1}


class Limiter:
    """Every limit of one gateway process. ``window_s`` is for tests (60 in service)."""

    def __init__(self, settings: Settings, *, window_s: int = 60) -> None:
        self._storage = MemoryStorage()
        self._window = MovingWindowRateLimiter(self._storage)
        self._submissions = RateLimitItemPerSecond(
            settings.submissions_per_minute, window_s, namespace="submit"
        )
        self._login_user = RateLimitItemPerSecond(
            settings.login_attempts_per_minute_per_user, window_s, namespace="login-user"
        )
        self._auth_address = RateLimitItemPerSecond(
            settings.login_attempts_per_minute_per_address, window_s, namespace="auth-address"
        )
        self._max_running = settings.max_running_per_user
        self._max_documents = settings.max_documents_per_user
        self.edits = EditRate(settings.doc_edits_per_second)
        # One lock per user while one of their submissions is admitted; weak values, so
        # a lock goes away with its last holder.
        self._admitting: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    @contextlib.asynccontextmanager
    async def admit_story(
        self, user_id: str, count_active: Callable[[str], Awaitable[int]]
    ) -> AsyncIterator[None]:
        """Admit one new story of ``user_id``, or raise ``RateLimited``; the body writes it.

        The user's submissions in this process go through one at a time, so two of them
        cannot both pass the count of running stories before either is written.
        """
        lock = self._admitting.setdefault(user_id, asyncio.Lock())
        async with lock:
            running = await count_active(user_id)
            if running >= self._max_running:
                raise RateLimited(
                    f"{running} of your stories are still running (the limit is "
                    f"{self._max_running}); submit again when one completes",
                    retry_after=RUNNING_RETRY_AFTER_S,
                )
            await self._hit(self._submissions, "too many stories submitted", user_id)
            yield

    @contextlib.asynccontextmanager
    async def admit_document(
        self, user_id: str, count_documents: Callable[[str], Awaitable[int]]
    ) -> AsyncIterator[None]:
        """Admit one new document of ``user_id`` (one at a time per user in this process,
        as stories are), or raise ``RateLimited``; the body writes it."""
        lock = self._admitting.setdefault(f"doc:{user_id}", asyncio.Lock())
        async with lock:
            held = await count_documents(user_id)
            if held >= self._max_documents:
                raise RateLimited(
                    f"you hold {held} documents (the limit is {self._max_documents}); "
                    "delete one to open another",
                    retry_after=RUNNING_RETRY_AFTER_S,
                )
            yield

    async def auth_attempt(self, address: str | None) -> None:
        """Count a sign-in or registration from ``address``; a success resets nothing."""
        await self._hit(
            self._auth_address, "too many sign-in attempts from this address", address or "-"
        )

    async def login_attempt(self, username: str) -> None:
        """Count a sign-in attempt for ``username``, before its password is checked, so
        parallel guesses cannot slip past the limit while bcrypt runs."""
        await self._hit(
            self._login_user, "too many sign-in attempts for this account", username.lower()
        )

    async def close(self) -> None:
        """Stop the storage's expiry task (started on the first hit)."""
        timer = self._storage.timer
        if timer is not None and not timer.done():
            timer.cancel()
            # wait(), not await: the timer's cancellation is not ours to re-raise.
            await asyncio.wait([timer])

    async def _hit(self, item: RateLimitItem, message: str, key: str) -> None:
        if await self._window.hit(item, key):
            return
        stats = await self._window.get_window_stats(item, key)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(f"{message}; try again in {retry_after} s", retry_after=retry_after)
