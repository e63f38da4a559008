"""Server-Sent Events: a story's events as ``id: <cursor>``, ``event: <type>``, ``data: <json>``."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp_sse import sse_response

from amplify_stream.bus.base import Record
from amplify_stream.errors import AmplifyError
from amplify_stream.events import EVENT_TYPE_HEADER, ErrorEvent, with_cursor
from amplify_stream.gateway import keys
from amplify_stream.metrics import observe_relay

KEEP_ALIVE_S = 15.0


async def stream_events(
    request: web.Request,
    records: AsyncIterator[Record],
    *,
    first: tuple[str, str] | None = None,
    story_id: str | None = None,
) -> web.StreamResponse:
    """Send ``first`` (event type, JSON) and then every record, until the story completes."""
    async with sse_response(
        request,
        allow_all_methods=True,
        ping_interval=KEEP_ALIVE_S,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    ) as response:
        if first is not None:
            await response.send(first[1], event=first[0])
        try:
            async for record in records:
                event_type = (record.header(EVENT_TYPE_HEADER) or b"").decode()
                data = with_cursor(record.value, record.cursor).decode()
                await response.send(data, id=record.cursor, event=event_type)
                observe_relay(request.app[keys.METRICS], record.timestamp_ms)
        except AmplifyError as exc:
            # Headers are gone already: the error travels as an event.
            error = ErrorEvent(
                code=exc.code, message=exc.message, retryable=exc.retryable, story_id=story_id
            )
            await response.send(error.model_dump_json(exclude_none=True), event="error")
    return response
