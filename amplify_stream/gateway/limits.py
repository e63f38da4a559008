"""Hard limits of the gateway: stories per user (a rate, and how many run at once) and
sign-in attempts (per username and per client address). A refusal is ``RateLimited``
(429 with ``Retry-After`` over HTTP, ``error`` ``rate_limited`` on the socket).

The rates are moving windows (``MovingWindow``): exact, never more than N in any window,
no double burst across the edge of a fixed one, and the time until a slot frees is the
``Retry-After``. Written here rather than with the ``limits`` library: its asyncio memory
storage sweeps every key after a hit (a thread hop per key, most of a millisecond per
story at 50 users by profile, growing with the users), where a window here is the times
of a key's last N hits and O(1) a hit.

Per process: the windows are in memory, so with several gateway processes each counts on
its own and a client spread over N gateways gets up to N times a rate. The running-stories
limit needs no window: it counts the user's stories not yet completed in the store, which
every gateway shares (only two gateways admitting one user's stories at the same instant
could both pass it).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable

from amplify_stream.config.groups import LimitsSettings
from amplify_stream.errors import RateLimited

# When a user's running stories are at the limit nothing says when one will end; a
# story of the offline analyzer takes seconds, so this is the hint given.
RUNNING_RETRY_AFTER_S = 5


class MovingWindow:
    """At most ``limit`` hits of one key in any ``window_s`` seconds. A key keeps the
    times of its last ``limit`` hits: a hit is refused while the oldest of them is still
    in the window, and a refused hit takes no slot."""

    def __init__(self, limit: int, window_s: float) -> None:
        self._limit = limit
        self._window = float(window_s)
        self._hits: dict[str, deque[float]] = {}
        self._swept = time.monotonic()

    def hit(self, key: str) -> float | None:
        """None when admitted (and counted); else the seconds until a slot frees."""
        now = time.monotonic()
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque(maxlen=self._limit)
        elif len(hits) == self._limit and now - hits[0] < self._window:
            return hits[0] + self._window - now
        hits.append(now)  # at ``limit`` the oldest, out of the window, falls off
        if now - self._swept >= self._window:
            # Keys with no hit in the window are as if never seen: dropped, once a window.
            self._swept = now
            self._hits = {k: h for k, h in self._hits.items() if now - h[-1] < self._window}
        return None

    def tracked(self) -> int:
        """How many keys are kept (the sweep's measure)."""
        return len(self._hits)


class EditRate:
    """Edits per second per user: a token bucket (``rate`` a second, bursts up to
    ``rate``). Written here, not with ``limits``: an edit is the hottest command of the
    gateway (a writer's keystrokes), and a bucket is two floats per user where a window
    keeps a time per hit."""

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

    def __init__(self, settings: LimitsSettings, *, window_s: int = 60) -> None:
        self._submissions = MovingWindow(settings.submissions_per_minute, window_s)
        self._login_user = MovingWindow(settings.login_attempts_per_minute_per_user, window_s)
        self._auth_address = MovingWindow(settings.login_attempts_per_minute_per_address, window_s)
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
        """Admit one new story of ``user_id``, or raise ``RateLimited``; the body writes
        its row (and no more: the user's next submission waits for it).

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
            _hit(self._submissions, "too many stories submitted", user_id)
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

    def auth_attempt(self, address: str | None) -> None:
        """Count a sign-in or registration from ``address``; a success resets nothing."""
        _hit(self._auth_address, "too many sign-in attempts from this address", address or "-")

    def login_attempt(self, username: str) -> None:
        """Count a sign-in attempt for ``username``, before its password is checked, so
        parallel guesses cannot slip past the limit while bcrypt runs."""
        _hit(self._login_user, "too many sign-in attempts for this account", username.lower())


def _hit(window: MovingWindow, message: str, key: str) -> None:
    wait = window.hit(key)
    if wait is None:
        return
    retry_after = max(1, math.ceil(wait))
    raise RateLimited(f"{message}; try again in {retry_after} s", retry_after=retry_after)
