"""The rules the editor's settings turn off, added to the writer's preferences on the
service (``GET`` then ``PUT /v1/me/preferences`` at the revision read), so they follow the
writer into every client: the web page, another editor, a story.

Added, never taken away: a rule off in the preferences may have been turned off from
another client, so a rule left out of the settings is not turned back on here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from amplify_stream.client.api import AmplifyClient
from amplify_stream.client.errors import ClientError
from amplify_stream.client.preferences import PATH, PreferenceChange

__all__ = ["PATH", "PreferenceSync", "add_rules_off"]

log = logging.getLogger(__name__)

# A service not up yet (the editor started first) is tried again this many times.
ATTEMPTS = 6


async def add_rules_off(client: AmplifyClient, rules: Iterable[str]) -> bool:
    """Union ``rules`` into the user's ``rules_off``; True when that changed them (a PUT
    only then, at the revision read: the same settings sent again write nothing, and a
    change from another client meanwhile is read again, not lost)."""
    wanted = tuple(dict.fromkeys(rules))
    if set(wanted) <= set((await client.preferences()).rules_off):
        return False
    await client.change_preferences(PreferenceChange(rules_off=wanted))
    return True


class PreferenceSync:
    """Runs one union at a time, in the order the settings changed (two overlapping
    GET-then-PUTs of this server would lose one's rules)."""

    def __init__(self, client: AmplifyClient, tell: Callable[[str], None]) -> None:
        self._client = client
        self._tell = tell
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    def want_off(self, rules: tuple[str, ...]) -> None:
        if not rules:
            return
        task = asyncio.create_task(self._sync(rules))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settled(self) -> None:
        """Every union asked for so far is done (tests, shutdown)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks))

    def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()

    async def _sync(self, rules: tuple[str, ...]) -> None:
        async with self._lock:
            for attempt in range(1, ATTEMPTS + 1):
                try:
                    if await add_rules_off(self._client, rules):
                        log.info("turned off in the preferences: %s", ", ".join(rules))
                    return
                except ClientError as exc:
                    if not exc.retryable or attempt == ATTEMPTS:
                        self._tell(f"amplify: disabledRules not saved: {exc.message}")
                        return
                    await asyncio.sleep(self._client.backoff(attempt))
