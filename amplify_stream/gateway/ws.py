"""The WebSocket ``/v1/stream``: submit, resume, cancel and ping, with story events relayed
to the socket as they are produced.

Only the handler reads the socket. Each watched story runs in its own task. A frame is
written straight to the socket when nothing waits before it (the common case: a word, and
the socket keeps up); otherwise it joins the outbox, which one sender task writes in
order. aiohttp writes a frame without yielding in between, so frames never interleave.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

import orjson
from aiohttp import WSMsgType, web
from pydantic import ValidationError

from amplify_stream.auth.tokens import Claims
from amplify_stream.errors import AmplifyError, InvalidMessage, InvalidStory
from amplify_stream.events import (
    DocClose,
    DocDismiss,
    DocEdit,
    DocOpen,
    DocWord,
    ErrorEvent,
    Ping,
    Pong,
    StoryAccepted,
    StoryCancel,
    StoryOptions,
    StoryResume,
    StorySubmit,
    client_message_adapter,
    with_cursor,
)
from amplify_stream.gateway import keys
from amplify_stream.gateway.authn import SUBPROTOCOL, authenticate
from amplify_stream.gateway.document_socket import SocketDocuments
from amplify_stream.gateway.documents import Documents
from amplify_stream.gateway.http import validation_details
from amplify_stream.gateway.openapi import Auth, Operation, Param, Reply, describe, error
from amplify_stream.gateway.security import require_allowed_origin
from amplify_stream.gateway.submission import Accepted, Stories
from amplify_stream.logs import story_id_var
from amplify_stream.metrics import Metrics, observe_relay

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

# Frames waiting for a slow client; past this the watchers wait, then catch up by cursor.
OUTBOX_LIMIT = 1024


def _anycase(word: str) -> str:
    """A JSON Schema pattern of ``word`` in any case (header values are case-insensitive)."""
    return "^" + "".join(f"[{c.upper()}{c.lower()}]" for c in word) + "$"


# The headers of an upgrade (RFC 6455 section 4.1), as aiohttp's handshake checks them;
# without them the answer is 400.
UPGRADE_HEADERS = (
    Param(
        "Upgrade",
        "header",
        "``websocket``.",
        {"type": "string", "pattern": _anycase("websocket")},
        True,
    ),
    Param(
        "Connection",
        "header",
        "``Upgrade``.",
        {"type": "string", "pattern": _anycase("upgrade")},
        True,
    ),
    Param(
        "Sec-WebSocket-Version",
        "header",
        "``13``.",
        {"type": "string", "enum": ["13", "8", "7"]},
        True,
    ),
    Param(
        "Sec-WebSocket-Key",
        "header",
        "16 random bytes in base64.",
        {"type": "string", "pattern": "^[A-Za-z0-9+/]{21}[AQgw]==$"},
        True,
    ),
)


@routes.get("/v1/stream")
@describe(
    Operation(
        summary="The WebSocket: submit, resume, cancel, ping (docs/protocol.md section 1)",
        description=(
            "A browser, which cannot set the Authorization header, offers the subprotocols "
            "``amplify.v1, bearer.<access_token>`` or passes ``?access_token=``."
        ),
        tag="stream",
        auth=Auth.BEARER_OR_QUERY,
        params=(
            *UPGRADE_HEADERS,
            Param(
                "Sec-WebSocket-Protocol",
                "header",
                "``amplify.v1, bearer.<access_token>``; the answer picks ``amplify.v1``.",
            ),
        ),
        replies={
            101: Reply("Switching to the WebSocket protocol."),
            400: error("Not a WebSocket upgrade request (the headers above)."),
            403: error("A page of an origin that is not allowed (``forbidden``)."),
        },
    )
)
async def stream(request: web.Request) -> web.WebSocketResponse:
    settings = request.app[keys.SETTINGS]
    # Browsers do not apply CORS to WebSockets: a foreign page is refused here (403).
    require_allowed_origin(request, settings.cors_origins)
    # Before the upgrade: no token means a 401 with the JSON error body, no socket.
    claims = authenticate(request, websocket=True)
    ws = web.WebSocketResponse(
        protocols=(SUBPROTOCOL,), max_msg_size=settings.max_ws_frame_bytes, heartbeat=30
    )
    await ws.prepare(request)
    registry = request.app[keys.SOCKETS]
    registry.add(ws)
    try:
        app = request.app
        await _Session(ws, claims, app[keys.STORIES], app[keys.DOCUMENTS], app[keys.METRICS]).run()
    finally:
        registry.discard(ws)
    return ws


class _Session:
    def __init__(
        self,
        ws: web.WebSocketResponse,
        claims: Claims,
        stories: Stories,
        documents: Documents,
        metrics: Metrics,
    ) -> None:
        self._ws = ws
        self._metrics = metrics
        self._claims = claims
        self._stories = stories
        # Frames, with the time their record was produced (relayed events only).
        self._outbox: asyncio.Queue[tuple[bytes, int | None]] = asyncio.Queue(OUTBOX_LIMIT)
        # Writes awaiting the socket's drain: a frame may skip the outbox only when none.
        self._writing = 0
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._documents = SocketDocuments(
            documents, claims.user_id, self._queue, self._doc_error, metrics
        )

    async def run(self) -> None:
        sender = asyncio.create_task(self._send_loop(), name="ws-sender")
        try:
            async for msg in self._ws:
                if msg.type == WSMsgType.TEXT:
                    await self._on_text(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await self._error(InvalidMessage("binary frames are not part of the protocol"))
        finally:
            await self._documents.aclose()
            tasks = [*self._watchers.values(), sender]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _queue(self, frame: str | bytes, produced_ms: int | None) -> None:
        """Send ``frame`` after every frame queued before it; ``produced_ms`` is when its
        record was produced (relayed events, for the relay-latency histogram)."""
        data = frame.encode() if isinstance(frame, str) else frame
        if self._writing or not self._outbox.empty():
            await self._outbox.put((data, produced_ms))
            return
        # Nothing ahead of it: one write, no hop through the sender task.
        await self._write(data, produced_ms)

    async def _write(self, frame: bytes, produced_ms: int | None) -> None:
        if self._ws.closed:
            return  # the client comes back with its cursor
        self._writing += 1
        try:
            await self._ws.send_frame(frame, WSMsgType.TEXT)
        except ConnectionResetError:
            return  # closing under us: the same
        finally:
            self._writing -= 1
        if produced_ms is not None:
            observe_relay(self._metrics, produced_ms)

    async def _doc_error(
        self, exc: AmplifyError, request_id: str | None, doc_id: str | None
    ) -> None:
        await self._error(exc, request_id, doc_id=doc_id)

    async def _send_loop(self) -> None:
        while True:
            frame, produced_ms = await self._outbox.get()
            if self._ws.closed:
                return
            await self._write(frame, produced_ms)

    async def _on_text(self, data: str) -> None:
        request_id: str | None = None
        try:
            try:
                raw = orjson.loads(data)
            except orjson.JSONDecodeError as exc:
                raise InvalidMessage("the frame is not JSON") from exc
            request_id = valid_request_id(raw)
            try:
                message = client_message_adapter.validate_python(raw)
            except ValidationError as exc:
                raise invalid_fields(exc) from exc
            if isinstance(message, StorySubmit):
                await self._submit(message)
            elif isinstance(message, StoryResume):
                accepted = await self._stories.find(
                    self._claims.user_id, message.story_id, message.cursor
                )
                self._watch(accepted)
            elif isinstance(message, StoryCancel):
                await self._stories.cancel(self._claims.user_id, message.story_id)
            elif isinstance(message, DocEdit):
                await self._documents.edit(message)
            elif isinstance(message, DocOpen):
                await self._documents.open(message)
            elif isinstance(message, DocClose):
                self._documents.close(message)
            elif isinstance(message, DocDismiss):
                await self._documents.dismiss(message)
            elif isinstance(message, DocWord):
                await self._documents.word(message)
            elif isinstance(message, Ping):
                await self._queue(Pong(request_id=message.request_id).model_dump_json(), None)
        except AmplifyError as exc:
            await self._error(exc, request_id, raw_story_id(data), doc_id=raw_field(data, "doc_id"))

    async def _submit(self, message: StorySubmit) -> None:
        # Only what the frame set: a focus left out is the user's default (preferences).
        options = StoryOptions.model_validate(
            message.model_dump(exclude={"type"}, exclude_unset=True)
        )
        try:
            accepted = await self._stories.submit(self._claims.user_id, options)
        except InvalidStory as exc:
            # The rules of POST /v1/stories (422 invalid_story there); on the socket a
            # broken one is an invalid field like any other (docs/protocol.md section 1).
            raise InvalidMessage(exc.message, details=exc.details) from exc
        reply = StoryAccepted(
            story_id=accepted.story_id, user_id=self._claims.user_id, request_id=message.request_id
        )
        await self._queue(reply.model_dump_json(), None)
        self._watch(accepted)

    def _watch(self, accepted: Accepted) -> None:
        previous = self._watchers.pop(accepted.story_id, None)
        if previous is not None:
            previous.cancel()
        task = asyncio.create_task(self._relay(accepted), name=f"ws-watch:{accepted.story_id}")
        self._watchers[accepted.story_id] = task
        task.add_done_callback(
            lambda t: (
                self._watchers.pop(accepted.story_id, None)
                if self._watchers.get(accepted.story_id) is t
                else None
            )
        )

    async def _relay(self, accepted: Accepted) -> None:
        story_id_var.set(accepted.story_id)
        try:
            async for record in self._stories.watch(accepted):
                await self._queue(with_cursor(record.value, record.cursor), record.timestamp_ms)
        except AmplifyError as exc:
            await self._error(exc, story_id=accepted.story_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("relay to socket failed", extra={"story_id": accepted.story_id})
            failure = AmplifyError("relay failed; resume from your last cursor")
            await self._error(failure, story_id=accepted.story_id)

    async def _error(
        self,
        exc: AmplifyError,
        request_id: str | None = None,
        story_id: str | None = None,
        *,
        doc_id: str | None = None,
    ) -> None:
        event = ErrorEvent(
            code=exc.code,
            message=exc.message,
            retryable=exc.retryable,
            retry_after=None if exc.retry_after is None else max(1, math.ceil(exc.retry_after)),
            request_id=request_id,
            story_id=story_id,
            doc_id=doc_id,
        )
        await self._queue(event.model_dump_json(exclude_none=True), None)


def valid_request_id(raw: Any) -> str | None:
    """The frame's ``request_id`` when it is valid (the same field on every message), so
    that an error about the frame's other fields can echo it."""
    if not isinstance(raw, dict) or "request_id" not in raw:
        return None
    try:
        return Ping(type="ping", request_id=raw["request_id"]).request_id
    except ValidationError:
        return None


def invalid_fields(exc: ValidationError) -> InvalidMessage:
    """``invalid_message`` naming each invalid field first: ``focus[0]: Input should be ...``."""
    details = validation_details(exc)
    problems = []
    for problem in details:
        field = field_name(problem["loc"], problem["type"])
        problems.append(problem["msg"] if field is None else f"{field}: {problem['msg']}")
    return InvalidMessage("; ".join(problems), details=details)


def field_name(loc: list[str | int], kind: str) -> str | None:
    """``focus[0]`` for pydantic's ``("story.submit", "focus", 0)``: the first step is the
    message's ``type`` (the union's tag). An empty ``loc`` is about the frame as a whole:
    its ``type`` when the tag is missing or unknown, else no field (not an object)."""
    if not loc:
        return "type" if kind.startswith("union_tag") else None
    path = loc[1:]
    if not path:
        return None
    return str(path[0]) + "".join(
        f"[{step}]" if isinstance(step, int) else f".{step}" for step in path[1:]
    )


def raw_story_id(data: str) -> str | None:
    """The story a bad frame was about, when it says so (for the error's ``story_id``)."""
    return raw_field(data, "story_id")


def raw_field(data: str, name: str) -> str | None:
    """An id a bad frame names (``story_id``, ``doc_id``), for its error to echo."""
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    value = raw.get(name) if isinstance(raw, dict) else None
    return value if isinstance(value, str) and len(value) <= 100 else None
