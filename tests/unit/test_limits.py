"""The limiter on its own: windows, keys, the running-stories count, and its one lock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from amplify_stream.config import Settings
from amplify_stream.errors import RateLimited
from amplify_stream.gateway.limits import RUNNING_RETRY_AFTER_S, Limiter
from tests.conftest import SettingsFactory


@pytest.fixture
def make_limiter(make_settings: SettingsFactory) -> Callable[..., Limiter]:
    def make(window_s: int = 60, **overrides: int) -> Limiter:
        settings: Settings = make_settings(**overrides)
        return Limiter(settings, window_s=window_s)

    return make


async def admit(limiter: Limiter, user_id: str, running: int = 0) -> None:
    async def count(_: str) -> int:
        return running

    async with limiter.admit_story(user_id, count):
        pass


async def test_submissions_per_user_window(make_limiter: Callable[..., Limiter]) -> None:
    limiter = make_limiter(window_s=1, submissions_per_minute=2)
    try:
        await admit(limiter, "u1")
        await admit(limiter, "u1")
        with pytest.raises(RateLimited) as refused:
            await admit(limiter, "u1")
        assert refused.value.retry_after == 1
        assert refused.value.http_status == 429 and refused.value.retryable
        await admit(limiter, "u2")
        await asyncio.sleep(1.1)
        await admit(limiter, "u1")
    finally:
        await limiter.close()


async def test_retry_after_is_the_time_until_a_slot_frees(
    make_limiter: Callable[..., Limiter],
) -> None:
    limiter = make_limiter(submissions_per_minute=1)
    try:
        await admit(limiter, "u1")
        with pytest.raises(RateLimited) as refused:
            await admit(limiter, "u1")
        assert refused.value.retry_after in (59, 60)
    finally:
        await limiter.close()


async def test_running_stories_refused_without_using_a_submission(
    make_limiter: Callable[..., Limiter],
) -> None:
    limiter = make_limiter(max_running_per_user=2, submissions_per_minute=1)
    try:
        with pytest.raises(RateLimited) as refused:
            await admit(limiter, "u1", running=2)
        assert refused.value.retry_after == RUNNING_RETRY_AFTER_S
        # The refusal took no slot of the rate.
        await admit(limiter, "u1", running=1)
    finally:
        await limiter.close()


async def test_one_users_submissions_are_admitted_one_at_a_time(
    make_limiter: Callable[..., Limiter],
) -> None:
    limiter = make_limiter(max_running_per_user=3, submissions_per_minute=100)
    written: list[str] = []

    async def count(user_id: str) -> int:
        await asyncio.sleep(0)  # a database round trip, where another submit could slip in
        return len(written)

    async def submit(n: int) -> bool:
        try:
            async with limiter.admit_story("u1", count):
                await asyncio.sleep(0.01)
                written.append(f"s{n}")
        except RateLimited:
            return False
        return True

    try:
        results = await asyncio.gather(*(submit(n) for n in range(10)))
        assert sum(results) == 3 and len(written) == 3
    finally:
        await limiter.close()


async def test_sign_in_attempts(make_limiter: Callable[..., Limiter]) -> None:
    limiter = make_limiter(
        login_attempts_per_minute_per_user=2, login_attempts_per_minute_per_address=3
    )
    try:
        await limiter.login_attempt("Ada")
        await limiter.login_attempt("ada")
        with pytest.raises(RateLimited):
            await limiter.login_attempt("ADA")
        await limiter.login_attempt("grace")
        for _ in range(3):
            await limiter.auth_attempt("10.0.0.1")
        with pytest.raises(RateLimited, match="this address"):
            await limiter.auth_attempt("10.0.0.1")
        await limiter.auth_attempt("10.0.0.2")
        # No address (a Unix socket): all such clients share one.
        await limiter.auth_attempt(None)
    finally:
        await limiter.close()


async def test_close_is_safe_before_and_after_use(make_limiter: Callable[..., Limiter]) -> None:
    limiter = make_limiter()
    await limiter.close()
    await admit(limiter, "u1")
    await limiter.close()
    await limiter.close()
