"""Hard limits of the gateway: stories per user (a rate, and how many run at once), live
documents per user (edits a second, documents held) and sign-in attempts (per username
and per client address). A refusal is ``RateLimited`` (429 with ``Retry-After`` over HTTP,
``error`` ``rate_limited`` on the socket).

Where each is counted, and so what holds with several gateways:

- Stories: in the store, which every gateway shares (``StoryAdmission``, checked by
  ``store/admission.py`` under a lock on the user's row, in the transaction that writes
  the story): at most N created in any 60 s, and the stories not completed yet. Counted
  once cluster-wide; the ``Retry-After`` is when the N-th newest leaves the window.
- Documents held: likewise in the store, under the lock on the user's row
  (``DocumentAdmission``), so once cluster-wide.
- Edits a second: a token bucket per user, in Redis when ``AMPLIFY_REDIS_URL`` is set
  (``limits_redis.py``: one Lua call per edit), so once cluster-wide. Without Redis, the
  embedded default, or while Redis does not answer, each process keeps its own bucket
  (``EditRate``): a writer spread over N gateways gets up to N times the rate.
- Gemini calls in flight (the documents owners, ``documents/call_slots.py``): likewise
  in Redis when it is set, per process otherwise.
- Sign-in attempts: moving windows (exact, never more than N in any window, no double
  burst across the edge of a fixed one, and the time until a slot frees is the
  ``Retry-After``), in Redis when it is set (``SignInWindow``), else in this process
  (``MovingWindow``): a guesser spread over N gateways gets up to N times the attempts.
  Written here rather than with the ``limits`` library: its asyncio memory storage
  sweeps every key after a hit (a thread hop per key, most of a millisecond per story at
  50 users by profile, growing with the users), where a window here is the times of a
  key's last N hits and O(1) a hit.
"""

from __future__ import annotations

import math
import time
from collections import deque
from datetime import datetime

from amplify_stream import limits_redis
from amplify_stream.config.groups import LimitsSettings
from amplify_stream.errors import RateLimited
from amplify_stream.limits_redis import SharedRedis, TokenBucket
from amplify_stream.store.admission import StoryTally

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

    async def take(self, key: str) -> float | None:
        """``hit``, as the shared window is asked (``SignInWindow``)."""
        return self.hit(key)

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


class SignInWindow:
    """``MovingWindow`` counted in Redis, once for every gateway that shares it; this
    process's own while Redis does not answer."""

    def __init__(self, redis: SharedRedis, what: str, limit: int, window_s: float) -> None:
        self._redis = redis
        self._shared = limits_redis.MovingWindow(redis, what, limit, window_s)
        self._local = MovingWindow(limit, window_s)

    async def take(self, key: str) -> float | None:
        wait = await self._redis.ask(lambda: self._shared.hit(key))
        return self._local.hit(key) if wait is None else (wait or None)


class StoryAdmission:
    """The limits of a user's new story, checked by the store (``store/admission.py``)
    against the user's tally, read under a lock on the user: at most ``per_window``
    created in any ``window_s``, and ``max_running`` not completed yet. A refused story
    takes no slot."""

    def __init__(self, settings: LimitsSettings, window_s: float) -> None:
        self.per_window = settings.submissions_per_minute
        self.window_s = float(window_s)
        self._max_running = settings.max_running_per_user

    def check(self, tally: StoryTally, now: datetime) -> None:
        if tally.running >= self._max_running:
            raise RateLimited(
                f"{tally.running} of your stories are still running (the limit is "
                f"{self._max_running}); submit again when one completes",
                retry_after=RUNNING_RETRY_AFTER_S,
            )
        if tally.nth_newest is not None:
            wait = (tally.nth_newest - now).total_seconds() + self.window_s
            # Never past the window: another gateway's clock may run ahead of this one's.
            _refuse("too many stories submitted", min(wait, self.window_s))


class DocumentAdmission:
    """The limit of a user's new live document, checked by the store
    (``DocumentStore.create``) against how many they hold, counted under a lock on the
    user."""

    def __init__(self, max_documents: int) -> None:
        self._max_documents = max_documents

    def check(self, held: int) -> None:
        if held >= self._max_documents:
            raise RateLimited(
                f"you hold {held} documents (the limit is {self._max_documents}); "
                "delete one to open another",
                retry_after=RUNNING_RETRY_AFTER_S,
            )


class EditRate:
    """Edits per second per user in this process: a token bucket (``rate`` a second,
    bursts up to ``rate``). Written here, not with ``limits``: an edit is the hottest
    command of the gateway (a writer's keystrokes), and a bucket is two floats per user
    where a window keeps a time per hit."""

    def __init__(self, rate: int) -> None:
        self._rate = float(rate)
        self._buckets: dict[str, tuple[float, float]] = {}  # user -> (tokens, at)

    async def take(self, user_id: str) -> None:
        """Take one of the user's tokens, or raise ``RateLimited``."""
        now = time.monotonic()
        tokens, at = self._buckets.get(user_id, (self._rate, now))
        tokens = min(self._rate, tokens + (now - at) * self._rate)
        if tokens < 1:
            self._buckets[user_id] = (tokens, now)
            raise _edits_refused(self._rate)
        self._buckets[user_id] = (tokens - 1, now)
        if len(self._buckets) > 100_000:
            # Users idle for a second are full again: forgetting them changes nothing.
            self._buckets = {u: b for u, b in self._buckets.items() if now - b[1] < 1}


class SharedEditRate:
    """``EditRate`` counted in Redis, once for every gateway that shares it; this
    process's own bucket while Redis does not answer."""

    def __init__(self, redis: SharedRedis, rate: int) -> None:
        self._redis = redis
        self._rate = rate
        self._bucket = TokenBucket(redis, "edits", rate)
        self._local = EditRate(rate)

    async def take(self, user_id: str) -> None:
        wait = await self._redis.ask(lambda: self._bucket.take(user_id))
        if wait is None:
            await self._local.take(user_id)
        elif wait:
            raise _edits_refused(self._rate)


def _edits_refused(rate: float) -> RateLimited:
    # A bucket of a second's tokens has one again within the second.
    return RateLimited(
        f"more than {int(rate)} edits a second; nothing of this edit was applied", retry_after=1
    )


class Limiter:
    """Every limit of one gateway process. ``window_s`` is for tests (60 in service);
    ``redis``: where edits and sign-in attempts are counted (``limits_redis.shared_redis``),
    None for this process alone (closed with the limiter)."""

    def __init__(
        self, settings: LimitsSettings, *, window_s: int = 60, redis: SharedRedis | None = None
    ) -> None:
        self.stories = StoryAdmission(settings, window_s)
        self._login_user = _window(
            redis, "sign-ins", settings.login_attempts_per_minute_per_user, window_s
        )
        self._auth_address = _window(
            redis, "sign-ins-from", settings.login_attempts_per_minute_per_address, window_s
        )
        self.documents = DocumentAdmission(settings.max_documents_per_user)
        self._redis = redis
        rate = settings.doc_edits_per_second
        self.edits: EditRate | SharedEditRate = (
            EditRate(rate) if redis is None else SharedEditRate(redis, rate)
        )

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()

    async def auth_attempt(self, address: str | None) -> None:
        """Count a sign-in or registration from ``address``; a success resets nothing."""
        await _hit(
            self._auth_address, "too many sign-in attempts from this address", address or "-"
        )

    async def login_attempt(self, username: str) -> None:
        """Count a sign-in attempt for ``username``, before its password is checked, so
        parallel guesses cannot slip past the limit while bcrypt runs."""
        await _hit(self._login_user, "too many sign-in attempts for this account", username.lower())


def _window(
    redis: SharedRedis | None, what: str, limit: int, window_s: float
) -> MovingWindow | SignInWindow:
    return (
        MovingWindow(limit, window_s)
        if redis is None
        else SignInWindow(redis, what, limit, window_s)
    )


async def _hit(window: MovingWindow | SignInWindow, message: str, key: str) -> None:
    wait = await window.take(key)
    if wait is not None:
        _refuse(message, wait)


def _refuse(message: str, wait_s: float) -> None:
    retry_after = max(1, math.ceil(wait_s))
    raise RateLimited(f"{message}; try again in {retry_after} s", retry_after=retry_after)
