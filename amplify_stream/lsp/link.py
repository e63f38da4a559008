"""The language server's one WebSocket to the service, for every open file: kept open,
and opened again with backoff (exponential, full jitter) whenever it drops."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable

import aiohttp

from amplify_stream.client.api import AmplifyClient
from amplify_stream.client.live import Frame

log = logging.getLogger(__name__)

# The server pings every 30 s; this side too, so a silent network is noticed.
HEARTBEAT_S = 20.0


class ServiceLink:
    def __init__(
        self,
        client: AmplifyClient,
        *,
        on_open: Callable[[], None],
        on_frame: Callable[[Frame], None],
        on_lost: Callable[[], None],
        on_refused: Callable[[str], None],
    ) -> None:
        """``on_open``: a new socket is up (frames may be sent); ``on_frame``: one came;
        ``on_lost``: the socket went; ``on_refused``: the service refused the token."""
        self._client = client
        self._on_open = on_open
        self._on_frame = on_frame
        self._on_lost = on_lost
        self._on_refused = on_refused
        self._outbox: asyncio.Queue[Frame] | None = None
        self.connects = 0

    @property
    def connected(self) -> bool:
        return self._outbox is not None

    def send(self, frame: Frame) -> bool:
        """Queue ``frame`` on the open socket, in order; False when there is none."""
        if self._outbox is None:
            return False
        self._outbox.put_nowait(frame)
        return True

    async def run(self) -> None:
        """Until cancelled: connect, read, and after a drop connect again."""
        failures = 0
        while True:
            try:
                async with self._client.session.ws_connect(
                    self._client.stream_url,
                    headers=self._client.auth_headers(),
                    heartbeat=HEARTBEAT_S,
                ) as ws:
                    failures = 0
                    await self._serve(ws)
            except aiohttp.WSServerHandshakeError as exc:
                if exc.status in (401, 403):
                    self._on_refused(f"the service refused the token ({exc.status})")
                log.warning("cannot open the service's socket: %s", exc.status)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                log.warning("cannot reach the service: %r", exc)
            failures += 1
            await asyncio.sleep(self._client.backoff(failures))

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        outbox: asyncio.Queue[Frame] = asyncio.Queue()
        self._outbox = outbox
        self.connects += 1
        writer = asyncio.create_task(self._write(ws, outbox))
        try:
            log.info("connected to %s", self._client.stream_url)
            self._on_open()
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self._on_frame(json.loads(msg.data))
            log.warning("the service's socket closed (%s); reconnecting", ws.close_code)
        finally:
            self._outbox = None
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            self._on_lost()

    @staticmethod
    async def _write(ws: aiohttp.ClientWebSocketResponse, outbox: asyncio.Queue[Frame]) -> None:
        try:
            while True:
                await ws.send_json(await outbox.get())
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            log.warning("cannot write to the service: %r", exc)
            await ws.close()  # the reader ends; the link reconnects
