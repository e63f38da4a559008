"""The limits counted in Redis (``limits_redis.py``) against the real server of
``AMPLIFY_TEST_REDIS_URL``: the edit bucket, the call leases and the sign-in windows
shared by several clients (as several processes hold), the slots of a holder that died
freed by its lease, and the fall-back to this process's count when Redis does not
answer."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from amplify_stream.config import Settings
from amplify_stream.documents.call_slots import SharedCallSlots
from amplify_stream.errors import RateLimited
from amplify_stream.gateway.limits import Limiter
from amplify_stream.limits_redis import (
    Leases,
    MovingWindow,
    SharedRedis,
    TokenBucket,
    shared_redis,
)
from tests.conftest import SettingsFactory
from tests.e2e.conftest import closed_port

pytestmark = pytest.mark.timeout(30)

Clients = Callable[..., SharedRedis]


@pytest.fixture
async def clients(redis_url: str) -> AsyncIterator[Clients]:
    """``clients()``: a new client of the test Redis, as a process of its own holds, on
    the key prefix of this test (every client of one test shares it)."""
    prefix = f"t{uuid.uuid4().hex[:12]}"
    made: list[SharedRedis] = []

    def client(url: str = redis_url) -> SharedRedis:
        made.append(SharedRedis(url, prefix))
        return made[-1]

    yield client
    for redis in made:
        await redis.aclose()


# ---------------------------------------------------------------- edits a second


async def test_one_bucket_for_every_client(clients: Clients) -> None:
    buckets = [TokenBucket(clients(), "edits", 5) for _ in range(3)]
    waits = await asyncio.gather(*(buckets[n % 3].take("ada") for n in range(12)))
    assert sum(w == 0 for w in waits) == 5  # a second's burst, whoever asks
    assert all(0 < w <= 0.2 for w in waits if w)  # one token back within 1/5 s
    assert await buckets[0].take("bob") == 0  # per user
    await asyncio.sleep(0.21)
    assert await buckets[1].take("ada") == 0
    assert await buckets[2].take("ada") > 0


async def test_a_bucket_left_alone_is_full_again_and_forgotten(clients: Clients) -> None:
    redis = clients()
    bucket = TokenBucket(redis, "edits", 2)
    assert [await bucket.take("ada") for _ in range(3)][:2] == [0, 0]
    ttl_ms = await redis.client.pttl(redis.key("edits", "ada"))
    assert 0 < ttl_ms <= 1000
    await asyncio.sleep(1.05)
    assert await redis.client.exists(redis.key("edits", "ada")) == 0
    assert [await bucket.take("ada") for _ in range(3)] == [0, 0, pytest.approx(0.5, abs=0.05)]


async def test_the_gateway_counts_edits_in_redis_when_it_is_set(
    make_settings: SettingsFactory, redis_url: str
) -> None:
    settings = make_settings(doc_edits_per_second=3, redis_url=redis_url)
    gateways = [Limiter(settings, redis=shared_redis(settings)) for _ in range(3)]
    try:
        results = await asyncio.gather(
            *(gateways[n % 3].edits.take("ada") for n in range(9)), return_exceptions=True
        )
    finally:
        for limiter in gateways:
            await limiter.aclose()
    assert sum(r is None for r in results) == 3
    assert all(isinstance(r, RateLimited) and r.retry_after == 1 for r in results if r)


async def test_without_redis_each_gateway_counts_its_own(make_settings: SettingsFactory) -> None:
    settings = make_settings(doc_edits_per_second=3)
    gateways = [Limiter(settings, redis=shared_redis(settings)) for _ in range(3)]
    results = await asyncio.gather(
        *(gateways[n % 3].edits.take("ada") for n in range(9)), return_exceptions=True
    )
    assert results == [None] * 9  # the embedded default: 3 a second in each process


async def test_redis_away_means_this_process_counts(
    clients: Clients, caplog: pytest.LogCaptureFixture, make_settings: SettingsFactory
) -> None:
    settings = make_settings(doc_edits_per_second=2)
    away = clients(f"redis://127.0.0.1:{closed_port()}/0")
    limiter = Limiter(settings, redis=away)
    with caplog.at_level(logging.WARNING, "amplify_stream.limits_redis"):
        began = time.monotonic()
        await limiter.edits.take("ada")
        await limiter.edits.take("ada")
        with pytest.raises(RateLimited):
            await limiter.edits.take("ada")
        # Asked once, then left alone for OUTAGE_S: the writer does not wait on it.
        assert time.monotonic() - began < 2
    assert not away.usable
    said = [r for r in caplog.records if "counting in this process" in r.getMessage()]
    assert len(said) == 1 and "127.0.0.1" not in said[0].getMessage()


# ---------------------------------------------------------------- calls in flight


async def test_leases_hold_the_limit_for_every_client(clients: Clients) -> None:
    a, b = (Leases(clients(), "calls", 2, lease_s=5) for _ in range(2))
    assert await a.acquire("ada", "c1") == 0
    assert await b.acquire("ada", "c2") == 0
    wait = await a.acquire("ada", "c3")
    assert 4 < wait <= 5  # the first lease's end
    assert await b.acquire("bob", "c4") == 0  # per user
    await b.release("ada", "c1")  # any client may end any call
    assert await a.acquire("ada", "c3") == 0


async def test_a_dead_holders_slot_frees_when_its_lease_ends(clients: Clients) -> None:
    dead, alive = Leases(clients(), "calls", 1, lease_s=0.3), Leases(clients(), "calls", 1, 0.3)
    assert await dead.acquire("ada", "never-released") == 0
    assert await alive.acquire("ada", "c2") > 0
    await asyncio.sleep(0.35)
    assert await alive.acquire("ada", "c2") == 0
    # A renewed lease runs on past its first end; one that ended is not renewed.
    await asyncio.sleep(0.2)
    assert await alive.renew("ada", "c2")
    await asyncio.sleep(0.2)
    assert await dead.acquire("ada", "c3") > 0
    assert not await dead.renew("ada", "never-released")


async def test_owners_share_a_users_slots_and_wake_each_other(clients: Clients) -> None:
    owners = [SharedCallSlots(clients(), 2, lease_s=5) for _ in range(3)]
    running = peak = 0
    order: list[int] = []

    async def call(n: int) -> None:
        nonlocal running, peak
        async with owners[n % 3].hold("ada"):
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.05)
            running -= 1
            order.append(n)

    began = time.monotonic()
    await asyncio.gather(*(call(n) for n in range(12)))
    assert peak == 2 and sorted(order) == list(range(12))
    # Six rounds of 50 ms; a wake-up across owners waits at most one poll (100 ms).
    assert time.monotonic() - began < 6 * (0.05 + 0.1) + 1


async def test_a_dead_owners_calls_are_freed_and_a_renewing_one_keeps_its_slot(
    clients: Clients,
) -> None:
    dead = Leases(clients(), "gemini-calls", 1, lease_s=0.5)
    assert await dead.acquire("ada", "killed") == 0  # its process dies holding it
    alive = SharedCallSlots(clients(), 1, lease_s=0.3)
    began = time.monotonic()
    async with alive.hold("ada"):
        assert 0.4 < time.monotonic() - began < 1.5
        # Renewed every 0.1 s: still held after three leases.
        await asyncio.sleep(0.9)
        assert await dead.acquire("ada", "other") > 0
    assert await dead.acquire("ada", "other") == 0  # released at the end


async def test_call_slots_fall_back_to_this_process(clients: Clients) -> None:
    slots = SharedCallSlots(clients(f"redis://127.0.0.1:{closed_port()}/0"), 1)
    running = peak = 0

    async def call() -> None:
        nonlocal running, peak
        async with slots.hold("ada"):
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.02)
            running -= 1

    await asyncio.gather(*(call() for _ in range(4)))
    assert peak == 1


def test_no_redis_url_no_redis(make_settings: SettingsFactory) -> None:
    settings: Settings = make_settings()
    assert settings.redis_url is None and shared_redis(settings) is None


async def test_sign_in_attempts_are_counted_once_for_every_gateway(
    make_settings: SettingsFactory, redis_url: str
) -> None:
    settings = make_settings(
        redis_url=redis_url,
        login_attempts_per_minute_per_user=4,
        login_attempts_per_minute_per_address=100,
    )
    gateways = [Limiter(settings, redis=shared_redis(settings)) for _ in range(3)]
    try:
        results = await asyncio.gather(
            *(gateways[n % 3].login_attempt("Ada" if n % 2 else "ADA") for n in range(9)),
            return_exceptions=True,
        )
        assert sum(r is None for r in results) == 4
        refused = [r for r in results if isinstance(r, RateLimited)]
        assert len(refused) == 5 and {r.retry_after for r in refused} <= {59, 60}
        await gateways[0].login_attempt("grace")  # per username
    finally:
        for limiter in gateways:
            await limiter.aclose()


async def test_a_window_frees_a_slot_when_its_oldest_hit_leaves(clients: Clients) -> None:
    windows = [MovingWindow(clients(), "sign-ins", 2, window_s=0.5) for _ in range(2)]
    assert await windows[0].hit("ada") == 0
    await asyncio.sleep(0.2)
    assert await windows[1].hit("ada") == 0
    wait = await windows[0].hit("ada")
    assert 0.2 < wait <= 0.3  # the first hit leaves 0.5 s after it came
    await asyncio.sleep(wait + 0.02)
    assert await windows[1].hit("ada") == 0
    assert await windows[0].hit("ada") > 0  # the second hit is still in the window
