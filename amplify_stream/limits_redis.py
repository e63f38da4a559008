"""Limits counted in Redis (``AMPLIFY_REDIS_URL``), once for every process that shares it:
a user's edits a second (a token bucket), Gemini calls in flight (leases) and sign-in
attempts (moving windows). The callers (``gateway/limits.py``, ``documents/call_slots.py``)
keep the per-process count of the embedded default for when no Redis is configured, or
it does not answer.

Each count is one Lua script (EVALSHA, the script sent again only when the server lost
it), so a check and its update are one atomic step whatever the processes race, and every
time is the Redis server's own (``TIME``): the processes' clocks never meet. Written here,
not with ``limits`` (which has windows in Redis, but no token bucket and no count of calls
in flight): four short scripts on the one client, redis-py's. Keys are
``<topic prefix>:limits:<what>:<who>``, so services that share one Redis (and tests) stay
apart, and every key expires by itself.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from amplify_stream.config import Settings

log = logging.getLogger(__name__)

# A limit asked at every edit must not wait long for a server that is not there.
TIMEOUT_S = 0.5
# After Redis fails, this process counts alone for this long before asking it again.
OUTAGE_S = 5.0

# KEYS[1]: the bucket (a hash: tokens, and when they were counted, in µs); ARGV[1]: the
# tokens a second, which is also the burst. 0 when a token was taken, else the µs until
# one is there. A bucket is full again within a second of its last take, so it expires
# then: a missing bucket is a full one.
_TAKE = """
local rate = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = rate
if b[1] then
  tokens = math.min(rate, tonumber(b[1]) + (now - tonumber(b[2])) * rate / 1000000)
end
if tokens < 1 then
  return math.ceil((1 - tokens) * 1000000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tokens - 1, 'at', now)
redis.call('PEXPIRE', KEYS[1], 1000)
return 0
"""

# KEYS[1]: the calls in flight (a sorted set: call id -> end of its lease, in ms); ARGV:
# the limit, the call's id, the lease in ms. 0 when the call holds a slot now, else the
# ms until the first lease ends (a slot frees sooner when its call ends). Leases past
# their end (an owner that died) are dropped first.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(first[2]) - now)
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 0
"""

# KEYS[1]: the hits of the last window (a sorted set: hit id -> when, in ms); ARGV: the
# limit, the window in ms, the new hit's id. 0 when the hit is counted, else the ms until
# the hit that frees a slot leaves the window. A refused hit is not counted.
_HIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local hits = redis.call('ZCARD', KEYS[1])
if hits >= limit then
  local frees = redis.call('ZRANGE', KEYS[1], hits - limit, hits - limit, 'WITHSCORES')
  return math.max(1, tonumber(frees[2]) + window - now)
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return 0
"""

# KEYS[1], ARGV[1], ARGV[2]: as for _ACQUIRE. 1 when the call's lease was still running (it
# runs a lease from now), 0 when it had ended (its slot may be someone else's now).
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ends = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not ends or tonumber(ends) <= now then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""


class SharedRedis:
    """One process's client of the limits' Redis, and whether to ask it now: after a
    failure (down, unreachable, too slow) the callers count in their process for
    ``OUTAGE_S``, then try it again. The client connects on first use."""

    def __init__(self, url: str, key_prefix: str) -> None:
        self.client: Redis = Redis.from_url(
            url,
            socket_timeout=TIMEOUT_S,
            socket_connect_timeout=TIMEOUT_S,
            # One retry, at once: a pooled connection the server closed is replaced.
            retry=Retry(NoBackoff(), 1),
        )
        self._prefix = key_prefix
        self._down_until = 0.0

    def key(self, what: str, who: str) -> str:
        return f"{self._prefix}:limits:{what}:{who}"

    @property
    def usable(self) -> bool:
        return time.monotonic() >= self._down_until

    async def ask(self, count: Callable[[], Awaitable[float]]) -> float | None:
        """What ``count`` (one of the scripts below) answers; None when Redis is not to
        be asked now or does not answer: then the caller counts in its process."""
        if not self.usable:
            return None
        try:
            return await count()
        except RedisError as exc:
            self.failed(exc)
            return None

    def failed(self, error: RedisError) -> None:
        """Redis did not answer: counted in this process for a while (said once)."""
        if self.usable:
            # The type only: a message may carry the URL, and with it a password.
            log.warning(
                "Redis for the limits failed (%s): counting in this process for %g s",
                type(error).__name__,
                OUTAGE_S,
            )
        self._down_until = time.monotonic() + OUTAGE_S

    async def aclose(self) -> None:
        await self.client.aclose()


def shared_redis(settings: Settings) -> SharedRedis | None:
    """The limits' Redis of ``settings``; None when none is configured."""
    if settings.redis_url is None:
        return None
    return SharedRedis(settings.redis_url, settings.topic_prefix)


class TokenBucket:
    """``rate`` tokens a second per key, bursts up to ``rate``."""

    def __init__(self, redis: SharedRedis, what: str, rate: int) -> None:
        self._redis = redis
        self._what = what
        self._rate = rate
        self._take = redis.client.register_script(_TAKE)

    async def take(self, user_id: str) -> float:
        """0 when a token was taken, else the seconds until one is there. ``RedisError``
        when Redis does not answer."""
        wait_us = await self._take(keys=[self._redis.key(self._what, user_id)], args=[self._rate])
        return int(wait_us) / 1_000_000


class MovingWindow:
    """At most ``limit`` hits per key in any ``window_s``."""

    def __init__(self, redis: SharedRedis, what: str, limit: int, window_s: float) -> None:
        self._redis = redis
        self._what = what
        self._limit = limit
        self._window_ms = max(1, round(window_s * 1000))
        self._hit = redis.client.register_script(_HIT)

    async def hit(self, key: str) -> float:
        """0 when the hit is counted, else the seconds until a slot frees. ``RedisError``
        when Redis does not answer."""
        wait_ms = await self._hit(
            keys=[self._redis.key(self._what, key)],
            args=[self._limit, self._window_ms, uuid.uuid4().hex],
        )
        return int(wait_ms) / 1000


class Leases:
    """At most ``limit`` calls in flight per key, each holding its slot by a lease of
    ``lease_s`` that its holder renews while it runs: a holder that dies frees its slot
    when its lease ends."""

    def __init__(self, redis: SharedRedis, what: str, limit: int, lease_s: float) -> None:
        self._redis = redis
        self._what = what
        self._limit = limit
        self._lease_ms = max(1, round(lease_s * 1000))
        self._acquire = redis.client.register_script(_ACQUIRE)
        self._renew = redis.client.register_script(_RENEW)

    async def acquire(self, user_id: str, call_id: str) -> float:
        """0 when ``call_id`` holds a slot now, else the seconds until the first lease
        ends (try again then, or when a call ends). ``RedisError`` when Redis does not
        answer."""
        wait_ms = await self._acquire(
            keys=[self._key(user_id)], args=[self._limit, call_id, self._lease_ms]
        )
        return int(wait_ms) / 1000

    async def renew(self, user_id: str, call_id: str) -> bool:
        """A new lease from now; False when the old one had ended (the slot is lost)."""
        return bool(await self._renew(keys=[self._key(user_id)], args=[call_id, self._lease_ms]))

    async def release(self, user_id: str, call_id: str) -> None:
        await self._redis.client.zrem(self._key(user_id), call_id)

    def _key(self, user_id: str) -> str:
        return self._redis.key(self._what, user_id)


__all__ = ["Leases", "MovingWindow", "RedisError", "SharedRedis", "TokenBucket", "shared_redis"]
