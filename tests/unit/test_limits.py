"""The limiter on its own: a story's admission from its tally (the store's side is
tests/integration/test_story_admission.py), the edit bucket of one process, and the
sign-in windows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from amplify_stream.config import Settings
from amplify_stream.errors import RateLimited
from amplify_stream.gateway import limits
from amplify_stream.gateway.limits import RUNNING_RETRY_AFTER_S, Limiter, MovingWindow
from amplify_stream.store.admission import StoryTally
from tests.conftest import SettingsFactory


@pytest.fixture
def make_limiter(make_settings: SettingsFactory) -> Callable[..., Limiter]:
    def make(window_s: int = 60, **overrides: int) -> Limiter:
        settings: Settings = make_settings(**overrides)
        return Limiter(settings, window_s=window_s)

    return make


def tally(running: int = 0, nth_newest_s_ago: float | None = None) -> StoryTally:
    nth = None if nth_newest_s_ago is None else NOW - timedelta(seconds=nth_newest_s_ago)
    return StoryTally(running, nth)


NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def test_a_story_is_refused_while_the_nth_newest_is_in_the_window(
    make_limiter: Callable[..., Limiter],
) -> None:
    admission = make_limiter(submissions_per_minute=2).stories
    assert (admission.per_window, admission.window_s) == (2, 60)
    admission.check(tally(), NOW)
    with pytest.raises(RateLimited) as refused:
        admission.check(tally(nth_newest_s_ago=15.2), NOW)
    # The slot frees when the 2nd newest leaves the window: in 44.8 s.
    assert refused.value.retry_after == 45
    assert refused.value.http_status == 429 and refused.value.retryable
    assert "try again in 45 s" in str(refused.value)
    with pytest.raises(RateLimited) as refused:
        admission.check(tally(nth_newest_s_ago=59.99), NOW)
    assert refused.value.retry_after == 1  # never 0
    with pytest.raises(RateLimited) as refused:
        admission.check(tally(nth_newest_s_ago=-2), NOW)  # another gateway's clock ahead
    assert refused.value.retry_after == 60  # never past the window


def test_running_stories_are_refused_first(make_limiter: Callable[..., Limiter]) -> None:
    admission = make_limiter(max_running_per_user=2).stories
    admission.check(tally(running=1), NOW)
    with pytest.raises(RateLimited, match="2 of your stories are still running") as refused:
        admission.check(tally(running=2, nth_newest_s_ago=1), NOW)
    assert refused.value.retry_after == RUNNING_RETRY_AFTER_S


async def test_edits_a_second_are_a_token_bucket(
    make_limiter: Callable[..., Limiter], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(limits.time, "monotonic", lambda: now[0])
    edits = make_limiter(doc_edits_per_second=4).edits
    for _ in range(4):
        await edits.take("u1")  # a burst of a second's worth
    with pytest.raises(RateLimited) as refused:
        await edits.take("u1")
    assert refused.value.retry_after == 1
    await edits.take("u2")  # per user
    now[0] += 0.25  # a quarter of a second: one token back
    await edits.take("u1")
    with pytest.raises(RateLimited):
        await edits.take("u1")


async def test_sign_in_attempts(make_limiter: Callable[..., Limiter]) -> None:
    limiter = make_limiter(
        login_attempts_per_minute_per_user=2, login_attempts_per_minute_per_address=3
    )
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
