"""A TCP proxy in front of a test server whose connections a test can cut, to see how
clients survive a network that drops (not a clean close: the sockets are aborted)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator


class CuttingProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._links: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections = 0
        # Cut this many WebSocket connections right after the upgrade's answer head,
        # before the first frame reaches the client.
        self.cut_after_head = 0
        # While down (``down`` to ``up``), every new connection is aborted at once: when
        # (monotonic) each was refused, and when each connection got through.
        self.is_down = False
        self.refused_at: list[float] = []
        self.accepted_at: list[float] = []
        self._refused = asyncio.Event()

    def down(self) -> None:
        """The link goes down: every open connection cut, every new one refused until
        ``up``."""
        self.is_down = True
        self._refused.clear()
        self.cut()

    def up(self) -> None:
        self.is_down = False

    async def refused(self, timeout: float) -> float:
        """When a connection was first refused since ``down``: a client tried to come back
        and could not (it knows its link is down)."""
        async with asyncio.timeout(timeout):
            await self._refused.wait()
        return self.refused_at[-1]

    def cut(self) -> None:
        """Abort every open connection, both sides."""
        for writer in list(self._links):
            writer.transport.abort()
        self._links.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.is_down:
            self.refused_at.append(time.monotonic())
            self._refused.set()
            writer.transport.abort()
            return
        self.accepted_at.append(time.monotonic())
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._links |= {writer, up_writer}
        upgrade = asyncio.Event()  # this connection carries a WebSocket upgrade to cut
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer, upgrade, upstream=True)),
            asyncio.create_task(self._pump(up_reader, writer, upgrade, upstream=False)),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            self._tasks.difference_update(pumps)
            for w in (writer, up_writer):
                self._links.discard(w)
                w.transport.abort()

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        upgrade: asyncio.Event,
        *,
        upstream: bool,
    ) -> None:
        seen = b""
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                if upstream and self.cut_after_head and b"upgrade: websocket" in data.lower():
                    self.cut_after_head -= 1
                    upgrade.set()
                if upstream or not upgrade.is_set():
                    writer.write(data)
                    await writer.drain()
                    continue
                if b"\r\n\r\n" in seen:
                    return  # the first answer after the head is lost: the caller aborts
                seen += data
                head, sep, _ = seen.partition(b"\r\n\r\n")
                if sep:
                    writer.write(head + sep)  # small: the transport sends it at once
                    await writer.drain()


@contextlib.asynccontextmanager
async def cutting_proxy(
    target_host: str, target_port: int
) -> AsyncIterator[tuple[CuttingProxy, int]]:
    proxy = CuttingProxy(target_host, target_port)
    server = await asyncio.start_server(proxy._handle, "127.0.0.1", 0)
    port: int = server.sockets[0].getsockname()[1]
    try:
        yield proxy, port
    finally:
        proxy.cut()
        server.close()
        await server.wait_closed()
