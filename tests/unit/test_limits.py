"""The limiter on its own: windows, keys, the running-stories count, and its one lock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from amplify_stream.config import Settings
from amplify_stream.errors import RateLimited
from amplify_stream.gateway import limits
from amplify_stream.gateway.limits import RUNNING_RETRY_AFTER_S, Limiter, MovingWindow
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
    await admit(limiter, "u1")
    await admit(limiter, "u1")
    with pytest.raises(RateLimited) as refused:
        await admit(limiter, "u1")
    assert refused.value.retry_after == 1
    assert refused.value.http_status == 429 and refused.value.retryable
    await admit(limiter, "u2")
    await asyncio.sleep(1.1)
    await admit(limiter, "u1")


async def test_retry_after_is_the_time_until_a_slot_frees(
    make_limiter: Callable[..., Limiter],
) -> None:
    limiter = make_limiter(submissions_per_minute=1)
    await admit(limiter, "u1")
    with pytest.raises(RateLimited) as refused:
        await admit(limiter, "u1")
    assert refused.value.retry_after in (59, 60)


async def test_running_stories_refused_without_using_a_submission(
    make_limiter: Callable[..., Limiter],
) -> None:
    limiter = make_limiter(max_running_per_user=2, submissions_per_minute=1)
    with pytest.raises(RateLimited) as refused:
        await admit(limiter, "u1", running=2)
    assert refused.value.retry_after == RUNNING_RETRY_AFTER_S
    # The refusal took no slot of the rate.
    await admit(limiter, "u1", running=1)


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

    results = await asyncio.gather(*(submit(n) for n in range(10)))
    assert sum(results) == 3 and len(written) == 3


async def test_sign_in_attempts(make_limiter: Callable[..., Limiter]) -> None:
    limiter = make_limiter(
        login_attempts_per_minute_per_user=2, login_attempts_per_minute_per_address=3
    )
    limiter.login_attempt("Ada")
    limiter.login_attempt("ada")
    with pytest.raises(RateLimited):
        limiter.login_attempt("ADA")
    limiter.login_attempt("grace")
    for _ in range(3):
        limiter.auth_attempt("10.0.0.1")
    with pytest.raises(RateLimited, match="this address"):
        limiter.auth_attempt("10.0.0.1")
    limiter.auth_attempt("10.0.0.2")
    # No address (a Unix socket): all such clients share one.
    limiter.auth_attempt(None)


def test_moving_window_allows_no_burst_across_the_edge(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr(limits.time, "monotonic", lambda: now[0])
    window = MovingWindow(3, 60)
    for at in (1050.0, 1055.0, 1059.0):
        now[0] = at
        assert window.hit("u") is None
    # A fixed window would start afresh at 60 s; the moving one waits for the first
    # hit to leave it (at 110 s), and then has one slot only.
    now[0] = 1065.0
    assert window.hit("u") == pytest.approx(45)
    now[0] = 1110.0
    assert window.hit("u") is None
    assert window.hit("u") == pytest.approx(5)


def test_moving_window_forgets_idle_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(limits.time, "monotonic", lambda: now[0])
    window = MovingWindow(1, 10)
    assert window.hit("idle") is None
    now[0] += 30
    assert window.hit("busy") is None
    assert window.tracked() == 1
    assert window.hit("idle") is None  # as new
    assert window.hit("idle") is not None
