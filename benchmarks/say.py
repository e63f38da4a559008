"""The writer's say across clients (figure ``say_cross_client``; docs/protocol.md
section 6, "The writer's say": "At once, for every watcher"). Two clients of one writer
watch the same document on the embedded default (``amplify-stream serve`` alone, the
memory bus, the local analyzer, as ``make run`` starts it):

- the page's way: a raw WebSocket to ``/v1/stream`` with the token in the subprotocol
  list, ``doc.open`` by the document's id, ``doc.dismiss {doc_id, id, scope:
  "suggestion"}`` as ``amplify_stream/gateway/static/say.js`` sends it;
- the language server: ``amplify-stream lsp`` as its own process over stdio, driven by
  pygls's ``LanguageClient`` as an editor drives it (``initialize``, ``didOpen`` of a
  file, which makes the document; ``workspace/executeCommand`` of ``amplify.dismiss``
  with the arguments its code action carries).

One client dismisses a suggestion both show; measured is the time from sending that
(the frame, or the command's request) to the moment the OTHER client shows it gone: on
the page, the ``doc.retracted`` frame naming it; in the editor, the first
``textDocument/publishDiagnostics`` of the file without it. The directions alternate,
one dismissal at a time, each of another sentence's finding (a dismissal hides its own
sentence's finding only). Beside it, the sender's own answer: the page's own
``doc.retracted``, the command's result (its ``doc.ignores``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from lsprotocol import types
from pygls.lsp.client import LanguageClient

from amplify_stream.client.live import Frame
from benchmarks.measure import percentiles
from benchmarks.stack import COMMAND, Stack

SAMPLES = 40  # per direction
WARMUP = 3  # per direction, before the samples, not counted
TARGET_P95_MS = 300.0
# Between two dismissals: the last one's frames all in, so each is timed on a quiet service.
PAUSE_S = 0.1
WAIT_S = 15.0
URI = "file:///tmp/say-bench.txt"
DIRECTIONS = ("page_to_editor", "editor_to_page")
# A sentence a line, each with a finding of its own (an adjective with a one-word
# replacement after "very"): more than the dismissals need.
NOUNS = (
    "dog", "boat", "lamp", "road", "room", "sea", "wind", "hall", "bell", "ship",
    "door", "yard", "hill", "barn", "gate", "mast", "pier", "town", "cave", "well",
)  # fmt: skip
ADJECTIVES = ("big", "loud", "cold", "quiet", "small", "dark")


def document_text() -> str:
    lines = [f"The {noun} was very {adj}." for adj in ADJECTIVES for noun in NOUNS]
    return "\n".join(lines) + "\n"


class Editor(LanguageClient):
    """The language server in its own process, as an editor drives it: each
    ``publishDiagnostics`` of the file noted (when it came, the suggestion ids it shows)."""

    def __init__(self) -> None:
        super().__init__("say-bench", "1")
        self.shown: set[str] = set()
        self.published: list[tuple[float, set[str]]] = []
        self.changed = asyncio.Event()
        self._stderr: asyncio.Task[None] | None = None

        @self.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def _published(params: types.PublishDiagnosticsParams) -> None:
            if params.uri != URI:
                return
            ids = {str(d.data["id"]) for d in params.diagnostics if isinstance(d.data, dict)}
            self.shown = ids
            self.published.append((time.monotonic(), ids))
            self.changed.set()

    async def start(self, env: dict[str, str]) -> None:
        await self.start_io(COMMAND, "lsp", env=env)
        if self._server is not None and self._server.stderr is not None:
            # The server logs to stderr: read it, so a full pipe never stalls it.
            self._stderr = asyncio.create_task(_drain(self._server.stderr))
        await self.initialize_async(
            types.InitializeParams(
                capabilities=types.ClientCapabilities(
                    general=types.GeneralClientCapabilities(position_encodings=["utf-16"])
                ),
                process_id=None,
            )
        )
        self.initialized(types.InitializedParams())

    async def close(self) -> None:
        with suppress(Exception):
            async with asyncio.timeout(10):
                await self.shutdown_async(None)
        self.exit(None)
        with suppress(Exception):
            async with asyncio.timeout(10):
                await self.stop()
        if self._server is not None and self._server.returncode is None:
            self._server.kill()
        if self._stderr is not None:
            self._stderr.cancel()

    async def until(self, condition: Callable[[], object], what: str) -> None:
        await _until(self.changed, condition, f"the editor: {what}")


async def _until(changed: asyncio.Event, condition: Callable[[], object], what: str) -> None:
    """Until ``condition`` holds, checked each time ``changed`` is set; ``WAIT_S`` at most."""
    try:
        async with asyncio.timeout(WAIT_S):
            while not condition():
                changed.clear()
                await changed.wait()
    except TimeoutError:
        raise RuntimeError(f"{what}: timed out") from None


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


@dataclass
class Page:
    """The page's socket: every frame with when it came, and the live suggestions."""

    ws: aiohttp.ClientWebSocketResponse
    frames: list[tuple[float, Frame]] = field(default_factory=list)
    live: set[str] = field(default_factory=set)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def read(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            self.frames.append((time.monotonic(), frame))
            if frame["type"] == "doc.suggestion":
                self.live.add(frame["id"])
            elif frame["type"] == "doc.retracted":
                self.live.difference_update(frame["ids"])
            self.changed.set()

    async def send(self, frame: Frame) -> float:
        sent = time.monotonic()
        await self.ws.send_str(json.dumps(frame))
        return sent

    def retracted_at(self, sid: str, since: float) -> float | None:
        return next(
            (
                at
                for at, f in self.frames
                if at >= since and f["type"] == "doc.retracted" and sid in f["ids"]
            ),
            None,
        )

    async def until(self, condition: Callable[[], object], what: str) -> None:
        await _until(self.changed, condition, f"the page: {what}")


async def say_cross_client(stack: Stack, samples: int = SAMPLES) -> dict[str, Any]:
    """``samples`` dismissals each way between the page and the editor (``WARMUP`` more
    before them); ms from sending to the other client showing it gone, and to the
    sender's own answer."""
    timings: dict[str, dict[str, list[float]]] = {
        d: {"other_ms": [], "own_ms": []} for d in DIRECTIONS
    }
    async with aiohttp.ClientSession() as session, AsyncExitStack() as exits:
        token = await stack.token(session, "say-bench")
        editor = Editor()
        env = stack.env | {"AMPLIFY_URL": stack.base, "AMPLIFY_TOKEN": token}
        await editor.start(env)
        exits.push_async_callback(editor.close)
        text = document_text()
        editor.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=URI, language_id="plaintext", version=1, text=text
                )
            )
        )
        needed = 2 * (samples + WARMUP)
        await editor.until(lambda: len(editor.shown) >= needed, f"{needed} diagnostics")
        doc_id = await _editor_document(session, stack.base, token)
        ws = await exits.enter_async_context(
            session.ws_connect(stack.ws_url, protocols=("amplify.v1", f"bearer.{token}"))
        )
        page = Page(ws)
        reader = asyncio.create_task(page.read())
        exits.callback(reader.cancel)
        await page.send({"type": "doc.open", "doc_id": doc_id, "request_id": "open"})
        await page.until(
            lambda: any(f["type"] == "doc.analyzed" for _, f in page.frames),
            "the live set after doc.open",
        )
        for n in range(samples + WARMUP):
            for direction in DIRECTIONS:
                both = sorted(editor.shown & page.live)
                if not both:
                    raise RuntimeError("no suggestion left that both clients show")
                sid = both[0]
                if direction == "page_to_editor":
                    other, own = await _from_page(page, editor, doc_id, sid)
                else:
                    other, own = await _from_editor(page, editor, sid)
                if n >= WARMUP:
                    timings[direction]["other_ms"].append(round(other * 1000, 3))
                    timings[direction]["own_ms"].append(round(own * 1000, 3))
                await asyncio.sleep(PAUSE_S)
        errors = [f for _, f in page.frames if f["type"] == "error"]
    figure: dict[str, Any] = {
        "samples": samples,
        "suggestions_at_start": needed,
        "target_p95_ms": TARGET_P95_MS,
        "errors": errors[:5],
    }
    for direction, t in timings.items():
        shown = percentiles(t["other_ms"]) | {"max": max(t["other_ms"], default=0.0)}
        figure[direction] = {"other": shown, "own": percentiles(t["own_ms"]), **t}
    figure["met"] = not errors and all(
        figure[d]["other"].get("p95", 1e9) < TARGET_P95_MS for d in DIRECTIONS
    )
    return figure


async def _editor_document(session: aiohttp.ClientSession, base: str, token: str) -> str:
    """The document the language server made for the file (its title names the file),
    once the store lists it."""
    headers = {"Authorization": f"Bearer {token}"}
    async with asyncio.timeout(WAIT_S):
        while True:
            async with session.get(f"{base}/v1/documents", headers=headers) as res:
                listed = (await res.json()).get("documents", [])
            found = [d["doc_id"] for d in listed if d.get("title") == "editor: say-bench.txt"]
            if found:
                return str(found[0])
            await asyncio.sleep(0.1)


async def _from_page(page: Page, editor: Editor, doc_id: str, sid: str) -> tuple[float, float]:
    """The page dismisses ``sid``: (until the editor shows it gone, until the page's own
    doc.retracted), in seconds."""
    seen = len(editor.published)
    sent = await page.send(
        {"type": "doc.dismiss", "doc_id": doc_id, "id": sid, "scope": "suggestion"}
    )

    def gone() -> float | None:
        return next((at for at, ids in editor.published[seen:] if sid not in ids), None)

    await editor.until(lambda: gone() is not None, f"{sid} gone from the diagnostics")
    await page.until(lambda: page.retracted_at(sid, sent) is not None, f"{sid} retracted")
    shown, own = gone(), page.retracted_at(sid, sent)
    assert shown is not None and own is not None
    return shown - sent, own - sent


async def _from_editor(page: Page, editor: Editor, sid: str) -> tuple[float, float]:
    """The editor dismisses ``sid`` (the command its code action carries): (until the page
    hears it retracted, until the command answers), in seconds."""
    sent = time.monotonic()
    result = await editor.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command="amplify.dismiss", arguments=[{"uri": URI, "id": sid, "scope": "suggestion"}]
        )
    )
    answered = time.monotonic()
    if not isinstance(result, dict) or result.get("type") != "doc.ignores":
        raise RuntimeError(f"amplify.dismiss answered {result!r}")
    await page.until(lambda: page.retracted_at(sid, sent) is not None, f"{sid} retracted")
    at = page.retracted_at(sid, sent)
    assert at is not None
    return at - sent, answered - sent
