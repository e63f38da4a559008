"""The rules the editor's settings turn off, added to the writer's preferences on the
service (``GET`` then ``PUT /v1/me/preferences`` at the revision read), so they follow the
writer into every client: the web page, another editor, a story.

Added, never taken away: a rule off in the preferences may have been turned off from
another client, so a rule left out of the settings is not turned back on here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp

from amplify_stream.client.api import AmplifyClient
from amplify_stream.client.errors import ClientError, http_error

log = logging.getLogger(__name__)

PATH = "/v1/me/preferences"
# A service not up yet (the editor started first) is tried again this many times.
ATTEMPTS = 6
_TIMEOUT = aiohttp.ClientTimeout(total=15)


async def add_rules_off(client: AmplifyClient, rules: Iterable[str]) -> bool:
    """Union ``rules`` into the user's ``rules_off``; True when that changed them (a PUT
    only then: the same settings sent again write nothing)."""
    prefs = await _call(client, "GET", PATH)
    have: list[str] = list(prefs.get("rules_off") or [])
    wanted = have + [r for r in dict.fromkeys(rules) if r not in have]
    if wanted == have:
        return False
    # PUT replaces: the words and the focus go back as they were, and only onto the
    # revision read (a change from another client meanwhile is a 409: read again).
    body = {
        "rules_off": wanted,
        "words": prefs.get("words") or [],
        "focus": prefs.get("focus"),
        "revision": prefs.get("revision", 0),
    }
    await _call(client, "PUT", PATH, body)
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
                    if exc.code == "conflict" and attempt < ATTEMPTS:
                        continue  # another client changed them since the GET: again
                    if not exc.retryable or attempt == ATTEMPTS:
                        self._tell(f"amplify: disabledRules not saved: {exc.message}")
                        return
                    await asyncio.sleep(self._client.backoff(attempt))


async def _call(client: AmplifyClient, method: str, path: str, body: Any = None) -> Any:
    try:
        async with client.session.request(
            method,
            client.base_url + path,
            json=body,
            headers=client.auth_headers(),
            timeout=_TIMEOUT,
        ) as res:
            if res.status >= 400:
                raise await http_error(res)
            return await res.json()
    except (aiohttp.ClientConnectionError, TimeoutError) as exc:
        raise ClientError(
            "unavailable", f"cannot reach {client.base_url}: {exc}", retryable=True
        ) from exc
