"""A writer at a live document over the real WebSocket, for the tests: the frames it
heard, and the document as it holds it (``amplify_stream.client.live.LiveDocument``),
kept up to date by a reader task. Shared by the integration, fault and browser-less
end-to-end tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp

from amplify_stream.client.live import Frame, LiveDocument
from amplify_stream.text.edits import Change, utf16_length


class Writer:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[Frame] = []
        # When each frame arrived (monotonic seconds), index for index.
        self.heard_at: list[float] = []
        self.doc: LiveDocument | None = None
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            self.frames.append(frame)
            self.heard_at.append(time.monotonic())
            if frame["type"] == "doc.opened" and (
                self.doc is None or self.doc.doc_id == frame["doc_id"]
            ):
                self.doc = LiveDocument.opened(frame)
            elif self.doc is not None and frame.get("doc_id") == self.doc.doc_id:
                self.doc.receive(frame)
            self._changed.set()

    async def send(self, frame: Frame) -> None:
        await self.ws.send_json(frame)

    async def until(self, condition: Callable[[], object], what: str, timeout: float = 30) -> None:
        try:
            async with asyncio.timeout(timeout):
                while not condition():
                    if self._reader.done():
                        self._reader.result()
                        raise AssertionError(f"the socket closed before {what}")
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}") from None

    def of(self, kind: str, **where: Any) -> list[Frame]:
        return [
            f
            for f in self.frames
            if f["type"] == kind and all(f.get(k) == v for k, v in where.items())
        ]

    async def open(self, text: str = "", **fields: Any) -> LiveDocument:
        return await self._opened({"type": "doc.open", "text": text, **fields})

    async def reopen(self, doc_id: str) -> LiveDocument:
        return await self._opened({"type": "doc.open", "doc_id": doc_id})

    async def _opened(self, frame: Frame) -> LiveDocument:
        self.doc = None
        errors = len(self.of("error"))
        await self.send(frame)
        await self.until(
            lambda: self.doc is not None or len(self.of("error")) > errors, "doc.opened"
        )
        assert self.doc is not None, self.of("error")[errors:]
        return self.doc

    async def edit(self, *changes: Change) -> int:
        assert self.doc is not None
        await self.send(self.doc.edit(list(changes)))
        return self.doc.version

    async def type(self, text: str, at: int | None = None, keys_per_s: float = 0) -> None:
        """Key by key, as a writer types (``at``: a UTF-16 offset; the end by default)."""
        assert self.doc is not None
        offset = utf16_length(self.doc.text) if at is None else at
        for key in text:
            await self.edit(Change(offset, offset, key))
            offset += utf16_length(key)
            if keys_per_s:
                await asyncio.sleep(1 / keys_per_s)

    async def settled(self, timeout: float = 30) -> LiveDocument:
        """Once every edit is acknowledged and analyzed at the last version."""
        doc = self.doc
        assert doc is not None
        await self.until(
            lambda: (
                doc.acked == doc.version
                and doc.analyzed is not None
                and doc.analyzed["version"] == doc.version
            ),
            f"doc.analyzed for version {doc.version}",
            timeout,
        )
        return doc

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)


@contextlib.asynccontextmanager
async def writer(session: aiohttp.ClientSession, base: str, token: str) -> AsyncIterator[Writer]:
    url = base.replace("http", "ws", 1) + "/v1/stream"
    async with session.ws_connect(url, headers={"Authorization": f"Bearer {token}"}) as ws:
        w = Writer(ws)
        try:
            yield w
        finally:
            await w.close()


def check_marks(doc: LiveDocument) -> None:
    """Every mark the writer holds slices exactly its quote out of its text."""
    for mark in doc.marks.values():
        assert doc.quote_of(mark) == mark.event["quote"], (mark, doc.text)
        start = mark.event["start"]
        if mark.event["version"] == doc.version:
            assert doc.text[start : mark.event["end"]] == mark.event["quote"]
