"""A user's provider calls in flight (``doc_gemini_calls_per_user``): a call waits its turn
for one of the user's slots, so a big paste or several of one user's documents never open
dozens of streams at once.

- ``LocalCallSlots``: the slots of this process (the embedded default): each documents
  owner bounds its own, so a user whose documents sit on N owners gets up to N times the
  limit.
- ``SharedCallSlots``: the slots in Redis (``AMPLIFY_REDIS_URL``), once for every owner.
  Each call holds a lease (``limits_redis.Leases``) that it renews while it runs, so the
  slots of an owner that died free themselves when their leases end. While Redis does not
  answer, the calls take this process's slots instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Protocol
from weakref import WeakValueDictionary

from amplify_stream.limits_redis import Leases, RedisError, SharedRedis

log = logging.getLogger(__name__)

# How long a call's slot outlives an owner that died; renewed at a third of it.
LEASE_S = 30.0
# How often the first waiting call of a user asks Redis again (a call ending in this
# process wakes it at once; one ending in another process is seen at the next ask).
POLL_S = 0.1


class CallSlots(Protocol):
    def hold(self, user_id: str) -> contextlib.AbstractAsyncContextManager[None]:
        """One of the user's slots, waited for, held for the body."""
        ...

    async def aclose(self) -> None: ...


class LocalCallSlots:
    def __init__(self, per_user: int) -> None:
        self._per_user = per_user
        # Weak values: a user with no call running or waiting holds no entry.
        self._slots: WeakValueDictionary[str, asyncio.Semaphore] = WeakValueDictionary()

    def hold(self, user_id: str) -> asyncio.Semaphore:
        slots = self._slots.get(user_id)
        if slots is None:
            slots = self._slots[user_id] = asyncio.Semaphore(self._per_user)
        return slots

    async def aclose(self) -> None:
        return None


class SharedCallSlots:
    def __init__(self, redis: SharedRedis, per_user: int, *, lease_s: float = LEASE_S) -> None:
        self._redis = redis
        self._leases = Leases(redis, "gemini-calls", per_user, lease_s)
        self._renew_every_s = lease_s / 3
        self._local = LocalCallSlots(per_user)
        # The calls of a user waiting in this process ask Redis one at a time.
        self._waiting: WeakValueDictionary[str, asyncio.Lock] = WeakValueDictionary()
        self._ended = asyncio.Event()  # set (and replaced) when a call of this process ends

    @contextlib.asynccontextmanager
    async def hold(self, user_id: str) -> AsyncIterator[None]:
        call = await self._acquire(user_id)
        if call is None:  # Redis does not answer: this process's slots
            async with self._local.hold(user_id):
                yield
            return
        renewing = asyncio.create_task(self._renew(user_id, call), name=f"lease:{call}")
        try:
            yield
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            # Shielded: a pass cancelled mid-call still gives its slot back at once.
            await asyncio.shield(self._release(user_id, call))

    async def _acquire(self, user_id: str) -> str | None:
        """The id of a call holding one of the user's slots, once one is free; None
        when Redis does not answer."""
        call = uuid.uuid4().hex
        lock = self._waiting.get(user_id)
        if lock is None:
            lock = self._waiting[user_id] = asyncio.Lock()
        async with lock:
            while True:
                wait_s = await self._redis.ask(lambda: self._leases.acquire(user_id, call))
                if wait_s is None:
                    return None
                if not wait_s:
                    return call
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(wait_s, POLL_S)):
                        await self._ended.wait()

    async def _renew(self, user_id: str, call: str) -> None:
        while True:
            await asyncio.sleep(self._renew_every_s)
            try:
                if not await self._leases.renew(user_id, call):
                    # Not renewed in time (a stalled loop, or Redis away longer than a
                    # lease): the call runs on, its slot may be another's meanwhile.
                    log.warning("a Gemini call outlived its lease; the user's limit may be over")
                    return
            except RedisError as exc:
                self._redis.failed(exc)

    async def _release(self, user_id: str, call: str) -> None:
        try:
            await self._leases.release(user_id, call)
        except RedisError as exc:
            self._redis.failed(exc)  # its lease ends by itself
        self._ended.set()
        self._ended = asyncio.Event()

    async def aclose(self) -> None:
        await self._redis.aclose()


def call_slots(per_user: int, redis: SharedRedis | None) -> CallSlots:
    """The slots in Redis when one is configured, else this process's."""
    return LocalCallSlots(per_user) if redis is None else SharedCallSlots(redis, per_user)
