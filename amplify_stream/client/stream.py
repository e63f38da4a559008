"""One story's events over the WebSocket, resumed by cursor whenever the socket drops."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator
from types import TracebackType
from typing import Protocol, Self

import aiohttp

from amplify_stream.client.errors import HTTP_CODES, ClientError
from amplify_stream.client.feed import Event, StoryFeed


class Connection(Protocol):
    """What a stream asks of its client (``AmplifyClient``): where the socket is, how to
    open it, and how long to wait before trying again."""

    base_url: str
    max_reconnects: int

    @property
    def session(self) -> aiohttp.ClientSession: ...

    @property
    def stream_url(self) -> str: ...

    def auth_headers(self) -> dict[str, str]: ...

    def backoff(self, failures: int) -> float: ...


# Answers of the gateway (no cursor: not from the topic) that end a stream for good.
FATAL_CODES = frozenset({"not_found", "unauthorized", "cursor_expired", "invalid_message"})


class _Dropped(Exception):
    """The socket ended before ``story.completed``: reconnect and resume."""


class StoryStream:
    """The events of one story: an async iterator; ``async with`` closes its socket."""

    def __init__(self, client: Connection, submit: Event | None, feed: StoryFeed) -> None:
        self._client = client
        self._submit = submit
        self.feed = feed
        self.reconnects = 0
        # Reconnect only a stream that worked once: a service that is not there at all
        # is an error at once.
        self._connected = False
        self._events = self._run()

    @property
    def story_id(self) -> str | None:
        return self.feed.story_id

    @property
    def cursor(self) -> str | None:
        return self.feed.cursor

    @property
    def text(self) -> str:
        """The rewrite so far (deltas of the current attempt only)."""
        return self.feed.text

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        return await self._events.__anext__()

    async def aclose(self) -> None:
        await self._events.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def _first_message(self) -> Event:
        if self.feed.story_id is None and self._submit is not None:
            return self._submit
        resume: Event = {"type": "story.resume", "story_id": self.feed.story_id}
        if self.feed.cursor is not None:
            resume["cursor"] = self.feed.cursor
        return resume

    async def _run(self) -> AsyncGenerator[Event, None]:
        failures = 0
        while True:
            try:
                async with contextlib.aclosing(self._one_socket()) as events:
                    async for event in events:
                        failures = 0  # the connection works again
                        if self.feed.accept(event):
                            yield event
                            if self.feed.done:
                                return
            except _Dropped as exc:
                failures += 1
                if not self._connected:
                    raise ClientError(
                        "unavailable", f"cannot reach {self._client.base_url}: {exc}"
                    ) from exc
                if failures > self._client.max_reconnects:
                    raise ClientError(
                        "unavailable",
                        f"the connection kept dropping ({exc}); resume from cursor "
                        f"{self.feed.cursor}",
                        retryable=True,
                        story_id=self.feed.story_id,
                    ) from exc
                self.reconnects += 1
                await asyncio.sleep(self._client.backoff(failures))

    async def _one_socket(self) -> AsyncGenerator[Event, None]:
        client = self._client
        try:
            async with client.session.ws_connect(
                client.stream_url,
                headers=client.auth_headers(),
                heartbeat=20,
                timeout=aiohttp.ClientWSTimeout(ws_close=5),
            ) as ws:
                self._connected = True
                await ws.send_json(self._first_message())
                async for msg in ws:
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        break
                    event = json.loads(msg.data)
                    self._check(event)
                    yield event
                # Closed without story.completed (or the caller would have stopped).
                if ws.close_code in (1008, 1009):
                    raise ClientError(
                        "invalid_message", f"the server closed the socket ({ws.close_code})"
                    )
                raise _Dropped(f"closed with code {ws.close_code}")
        except aiohttp.WSServerHandshakeError as exc:
            code = HTTP_CODES.get(exc.status, "internal")
            if exc.status >= 500 or exc.status == 429:
                raise _Dropped(f"handshake answered {exc.status}") from exc
            raise ClientError(code, exc.message, status=exc.status) from exc
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise _Dropped(repr(exc)) from exc

    def _check(self, event: Event) -> None:
        """Errors of the gateway itself (no cursor) either end the stream or resume it;
        errors from the topic (``tts_unavailable``, ``provider_error``...) are events."""
        if event.get("type") != "error" or event.get("cursor") is not None:
            return
        code = event.get("code")
        if self.feed.story_id is not None and code not in FATAL_CODES and event.get("story_id"):
            raise _Dropped(f"the gateway lost the stream ({code}); resuming")
        raise ClientError.from_event(event)
