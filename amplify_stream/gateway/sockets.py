"""Open WebSockets of this gateway, so shutdown can close them with GOING_AWAY."""

from __future__ import annotations

import asyncio

from aiohttp import WSCloseCode, web


class SocketRegistry:
    def __init__(self) -> None:
        self._open: set[web.WebSocketResponse] = set()

    def add(self, ws: web.WebSocketResponse) -> None:
        self._open.add(ws)

    def discard(self, ws: web.WebSocketResponse) -> None:
        self._open.discard(ws)

    def __len__(self) -> int:
        return len(self._open)

    async def close_all(self) -> None:
        sockets, self._open = list(self._open), set()
        await asyncio.gather(
            *(ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown") for ws in sockets),
            return_exceptions=True,
        )
