"""Work tried again, with exponential backoff, for as long as it fails in a way that
passes (the bus or the store away): the one backoff loop of the workers.

Why not tenacity (already installed, with google-genai) or stamina (built on it): a
call that succeeds at once costs ~18 us through ``AsyncRetrying`` against ~0.2 us here
(measured, Python 3.11), and every record a worker runs goes through this once (the
document owner folds a command in microseconds). Its hooks also run after the failure
was handled, so a hook's ``log.exception`` would need the exception passed by hand.
backoff is not in the dependency tree.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def retry_with_backoff(
    work: Callable[[], Awaitable[T]],
    *,
    retry_on: Callable[[Exception], bool],
    first_delay_s: float,
    max_delay_s: float,
    on_retry: Callable[[Exception, float], Awaitable[None]],
) -> T:
    """``work()``'s result, once a call of it succeeds. A failure for which ``retry_on``
    is true is followed by ``on_retry(failure, delay)`` (still inside the ``except``:
    ``log.exception`` shows it), then a sleep of ``delay``, which doubles up to
    ``max_delay_s``; any other failure is raised. A cancellation is never retried (it is
    no ``Exception``), whether it comes in ``work``, the hook or the sleep."""
    delay = first_delay_s
    while True:
        try:
            return await work()
        except Exception as exc:
            if not retry_on(exc):
                raise
            await on_retry(exc, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_delay_s)
