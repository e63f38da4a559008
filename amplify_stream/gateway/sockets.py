"""Open WebSockets of this gateway, so shutdown can close them with GOING_AWAY."""

from __future__ import annotations

import asyncio

from aiohttp import WSCloseCode, web

from amplify_stream.metrics import Metrics


class SocketRegistry:
    def __init__(self, metrics: Metrics) -> None:
        self._open: set[web.WebSocketResponse] = set()
        self._gauge = metrics.open_sockets

    def add(self, ws: web.WebSocketResponse) -> None:
        self._open.add(ws)
        self._gauge.set(len(self._open))

    def discard(self, ws: web.WebSocketResponse) -> None:
        self._open.discard(ws)
        self._gauge.set(len(self._open))

    def __len__(self) -> int:
        return len(self._open)

    async def close_all(self) -> None:
        sockets, self._open = list(self._open), set()
        await asyncio.gather(
            *(ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown") for ws in sockets),
            return_exceptions=True,
        )
