"""The async Python client of the service (docs/protocol.md), used by the CLI and the tests.

```
async with AmplifyClient("http://127.0.0.1:8080") as client:
    await client.login("ada", "correct horse battery")
    async with client.submit("Mara walked in...") as story:
        async for event in story:
            ...
```

Stories stream over the WebSocket. When the socket drops before ``story.completed``,
the stream reconnects with backoff and resumes after the last cursor it delivered (or
resubmits with the same idempotency key when the story was not yet accepted), so the
caller gets every event once, in order. Errors are ``ClientError`` with the contract's code.
The writer's own preferences (rules off, words, focus) are ``preferences()`` and
``change_preferences()``, a read-modify-write that loses no other client's change.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any, Self

import aiohttp

from amplify_stream.client.errors import ClientError, http_error
from amplify_stream.client.feed import StoryFeed
from amplify_stream.client.preferences import PATH, PreferenceChange, Preferences
from amplify_stream.client.stream import StoryStream

# Where the client commands look when neither an option nor AMPLIFY_URL names the service.
DEFAULT_URL = "http://127.0.0.1:8080"


class AmplifyClient:
    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        max_reconnects: int = 8,
        backoff_s: float = 0.2,
        max_backoff_s: float = 5.0,
        timeout_s: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.max_reconnects = max_reconnects
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:  # made on first use: it needs the running loop
            # No total timeout on the session: it would cut a long story's socket.
            connect = aiohttp.ClientTimeout(total=None, connect=10, sock_connect=10)
            self._session = aiohttp.ClientSession(timeout=connect)
        return self._session

    # ------------------------------------------------------------ HTTP

    @property
    def stream_url(self) -> str:
        """The WebSocket of section 1 (and 6)."""
        return self.base_url.replace("http", "ws", 1) + "/v1/stream"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def _request(self, method: str, path: str, body: Any = None) -> Any:
        try:
            async with self.session.request(
                method,
                self.base_url + path,
                json=body,
                headers=self.auth_headers(),
                timeout=self._timeout,
            ) as res:
                if res.status >= 400:
                    raise await http_error(res)
                if res.content_type == "application/json":
                    return await res.json()
                return await res.read()
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise ClientError(
                "unavailable", f"cannot reach {self.base_url}: {exc}", retryable=True
            ) from exc

    async def register(self, username: str, password: str) -> dict[str, Any]:
        user: dict[str, Any] = await self._request(
            "POST", "/v1/auth/register", {"username": username, "password": password}
        )
        return user

    async def login(self, username: str, password: str) -> str:
        """Sign in; later calls use the token. Returns it."""
        answer = await self._request(
            "POST", "/v1/auth/token", {"username": username, "password": password}
        )
        self.token = str(answer["access_token"])
        return self.token

    async def get_story(self, story_id: str) -> dict[str, Any]:
        story: dict[str, Any] = await self._request("GET", f"/v1/stories/{story_id}")
        return story

    async def download_audio(self, story_id: str) -> bytes:
        audio: bytes = await self._request("GET", f"/v1/stories/{story_id}/audio")
        return audio

    async def document_ids(self, title_prefix: str = "") -> list[str]:
        """Every document of the caller whose title starts with ``title_prefix``."""
        found, before = [], None
        while True:
            path = "/v1/documents?limit=100" + (f"&before={before}" if before else "")
            page = await self._request("GET", path)
            found += [
                d["doc_id"]
                for d in page["documents"]
                if (d.get("title") or "").startswith(title_prefix)
            ]
            before = page.get("next")
            if not before:
                return found

    async def delete_document(self, doc_id: str) -> None:
        await self._request("DELETE", f"/v1/documents/{doc_id}")

    async def cancel(self, story_id: str) -> None:
        await self._request("POST", f"/v1/stories/{story_id}/cancel")

    # ------------------------------------------------------------ the writer's say

    async def preferences(self) -> Preferences:
        """The caller's rules off, words and default focus (section 6, "The writer's say")."""
        return Preferences.from_json(await self._request("GET", PATH))

    async def set_preferences(
        self,
        *,
        rules_off: Iterable[str],
        words: Iterable[str],
        focus: Sequence[str] | None = None,
        revision: int | None = None,
    ) -> Preferences:
        """Replace them whole, as the ``PUT`` does (``focus`` None: all four areas). With
        ``revision`` (the one read), a change made since is ``ClientError`` ``conflict``
        and nothing is replaced. ``change_preferences`` is the read-modify-write."""
        wanted = Preferences(
            tuple(rules_off), tuple(words), None if focus is None else tuple(focus)
        )
        body = wanted.body() | {"revision": revision}
        return Preferences.from_json(await self._request("PUT", PATH, body))

    async def change_preferences(
        self, change: PreferenceChange, *, attempts: int = 5
    ) -> Preferences:
        """Make ``change`` on the preferences as they are now, and leave the rest as another
        client left it: read, change, ``PUT`` at the revision read; a change made elsewhere
        meanwhile (409 ``conflict``) is read again. Nothing changed: no ``PUT``."""
        attempt = 1
        while True:
            have = await self.preferences()
            wanted = change.applied(have)
            if wanted.same_as(have):
                return have
            try:
                return Preferences.from_json(await self._request("PUT", PATH, wanted.body()))
            except ClientError as exc:
                if exc.code != "conflict" or attempt >= attempts:
                    raise
                attempt += 1

    # ------------------------------------------------------------ WebSocket

    def submit(
        self,
        text: str,
        *,
        title: str | None = None,
        focus: Sequence[str] | None = None,
        rewrite: bool = True,
        audio: bool = True,
        voice: str | None = None,
        request_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> StoryStream:
        """Submit a story; iterate the result for its events, up to ``story.completed``.

        An idempotency key is made up when none is given, so a submit whose answer was
        lost with the connection is sent again safely."""
        message: dict[str, Any] = {
            "type": "story.submit",
            "text": text,
            "rewrite": rewrite,
            "audio": audio,
            "idempotency_key": idempotency_key or str(uuid.uuid4()),
        }
        optional = {"title": title, "voice": voice, "request_id": request_id}
        message |= {name: value for name, value in optional.items() if value is not None}
        if focus is not None:
            message["focus"] = list(focus)
        return StoryStream(self, message, StoryFeed())

    def resume(self, story_id: str, cursor: str | None = None) -> StoryStream:
        """Every event of the story after ``cursor`` (from its start when absent)."""
        return StoryStream(self, None, StoryFeed(story_id=story_id, cursor=cursor))

    def backoff(self, failures: int) -> float:
        """Exponential with full jitter, so many clients do not come back in step."""
        return random.uniform(0, min(self.max_backoff_s, self.backoff_s * 2 ** (failures - 1)))
