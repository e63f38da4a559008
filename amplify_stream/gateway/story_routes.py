"""Story routes over HTTP: submit (202, or SSE), the caller's stories and each one's
result, the events of a story (SSE), cancel, the narration.

Every route on one story answers ``not_found`` alike for a missing story and for another
user's: nothing tells them apart."""

from __future__ import annotations

from aiohttp import web

from amplify_stream.bus.base import CURSOR_PATTERN
from amplify_stream.errors import InvalidMessage, InvalidStory, NotFound
from amplify_stream.events import STREAM_EVENTS, StoryAccepted, StoryOptions
from amplify_stream.events.text_limits import STORY_TEXTS
from amplify_stream.gateway import keys
from amplify_stream.gateway.authn import authenticate
from amplify_stream.gateway.http import json_response, parse, read_json
from amplify_stream.gateway.openapi import (
    RATE_LIMITED,
    UNAVAILABLE,
    Auth,
    Operation,
    Param,
    Reply,
    describe,
    error,
)
from amplify_stream.gateway.schemas import (
    StoryCancelling,
    StoryDetail,
    StoryLinks,
    StoryList,
    StoryListQuery,
    StoryQueued,
    StorySummary,
)
from amplify_stream.gateway.sse import stream_events
from amplify_stream.speech.base import AUDIO_FORMAT

routes = web.RouteTableDef()


def _wants_sse(request: web.Request) -> bool:
    return "text/event-stream" in request.headers.get("Accept", "")


_NOT_FOUND = error("No such story of yours.")
_CURSOR = {"type": "string", "pattern": CURSOR_PATTERN}
_EVENTS = Reply(
    "The story's events as Server-Sent Events (``id``: cursor, ``event``: type, ``data``: "
    "the JSON of docs/protocol.md section 1) until ``story.completed``.",
    events=STREAM_EVENTS,
)


@routes.post("/v1/stories")
@describe(
    Operation(
        summary="Submit a story",
        description=(
            "202 with the story's links; with ``Accept: text/event-stream``, 200 and the "
            "story's events as they are produced."
        ),
        tag="stories",
        auth=Auth.BEARER,
        body=StoryOptions,
        body_texts=STORY_TEXTS,
        replies={
            200: _EVENTS,
            202: Reply(
                "Published; the events follow at ``links.events``.",
                StoryQueued,
                headers={"Location": "The story's URL."},
            ),
            409: error("The story of this idempotency key was just withdrawn; try again."),
            413: error(
                "The text is longer than the limit (``story_too_large``), or the body "
                "larger than the gateway reads."
            ),
            422: error("Not a valid story (``invalid_story``)."),
            429: RATE_LIMITED,
            503: UNAVAILABLE,
        },
    )
)
async def submit(request: web.Request) -> web.StreamResponse:
    claims = authenticate(request)
    options = parse(StoryOptions, await read_json(request), InvalidStory)
    stories = request.app[keys.STORIES]
    accepted = await stories.submit(claims.user_id, options)
    if not _wants_sse(request):
        if accepted.subscription is not None:
            request.app[keys.RELAY].unsubscribe(accepted.subscription)
        body = StoryQueued(story_id=accepted.story_id, links=StoryLinks.of(accepted.story_id))
        return json_response(body.to_json(), 202, {"Location": f"/v1/stories/{accepted.story_id}"})
    first = StoryAccepted(
        story_id=accepted.story_id, user_id=claims.user_id, request_id=options.request_id
    )
    return await stream_events(
        request,
        stories.watch(accepted),
        first=(first.type, first.model_dump_json()),
        story_id=accepted.story_id,
    )


@routes.get("/v1/stories")
@describe(
    Operation(
        summary="Your stories, newest first",
        tag="stories",
        auth=Auth.BEARER,
        query=StoryListQuery,
        replies={
            200: Reply("A page of stories.", StoryList),
            400: error("Not a valid ``limit``, or ``before`` is not one of your stories."),
            503: UNAVAILABLE,
        },
    )
)
async def list_stories(request: web.Request) -> web.Response:
    claims = authenticate(request)
    query = parse(StoryListQuery, dict(request.query), InvalidMessage)
    try:
        page, after = await request.app[keys.STORY_STORE].page_for_user(
            claims.user_id, limit=query.limit, before=query.before
        )
    except NotFound:
        # Missing or someone else's: the same answer, as on every story route.
        raise InvalidMessage("before is not one of your stories") from None
    body = StoryList(stories=[StorySummary.of(s) for s in page], next=after)
    return json_response(body.to_json())


@routes.get("/v1/stories/{story_id}")
@describe(
    Operation(
        summary="A story and its results",
        tag="stories",
        auth=Auth.BEARER,
        replies={200: Reply("The story.", StoryDetail), 404: _NOT_FOUND, 503: UNAVAILABLE},
    )
)
async def get_story(request: web.Request) -> web.Response:
    claims = authenticate(request)
    story = await request.app[keys.STORY_STORE].get_for_user(
        request.match_info["story_id"], claims.user_id
    )
    return json_response(StoryDetail.of(story).to_json())


@routes.get("/v1/stories/{story_id}/events")
@describe(
    Operation(
        summary="A story's events (SSE), from the first or after a cursor",
        tag="stories",
        auth=Auth.BEARER_OR_QUERY,
        params=(
            Param(
                "Last-Event-ID",
                "header",
                "Resume after this cursor (EventSource sets it); wins over ``cursor``.",
                _CURSOR,
            ),
            Param("cursor", "query", "Resume after this cursor: an event's ``cursor``.", _CURSOR),
        ),
        replies={
            200: _EVENTS,
            400: error(
                "The cursor is not one of this story's: not a cursor, of another partition, "
                "or past the stream's end (``invalid_message``)."
            ),
            404: _NOT_FOUND,
            410: error("The events after the cursor are past retention (``cursor_expired``)."),
            503: UNAVAILABLE,
        },
    )
)
async def events(request: web.Request) -> web.StreamResponse:
    claims = authenticate(request, query=True)
    cursor = request.headers.get("Last-Event-ID") or request.query.get("cursor")
    stories = request.app[keys.STORIES]
    accepted = await stories.find(claims.user_id, request.match_info["story_id"], cursor)
    return await stream_events(request, stories.watch(accepted), story_id=accepted.story_id)


@routes.post("/v1/stories/{story_id}/cancel")
@describe(
    Operation(
        summary="Cancel a story",
        description="Its stream ends with ``story.completed`` status ``cancelled``.",
        tag="stories",
        auth=Auth.BEARER,
        replies={
            202: Reply("The cancel command was published.", StoryCancelling),
            404: _NOT_FOUND,
            503: UNAVAILABLE,
        },
    )
)
async def cancel(request: web.Request) -> web.Response:
    claims = authenticate(request)
    story_id = request.match_info["story_id"]
    await request.app[keys.STORIES].cancel(claims.user_id, story_id)
    return json_response(StoryCancelling(story_id=story_id).to_json(), 202)


@routes.get("/v1/stories/{story_id}/audio")
@describe(
    Operation(
        summary="The whole narration (MP3)",
        tag="stories",
        auth=Auth.BEARER_OR_QUERY,
        replies={
            200: Reply(
                "The narration, once ``audio.completed``.",
                media=AUDIO_FORMAT,
                schema={"type": "string", "format": "binary"},
            ),
            404: error("No such story of yours, or its narration is not ready."),
            503: UNAVAILABLE,
        },
    )
)
async def audio(request: web.Request) -> web.StreamResponse:
    claims = authenticate(request, query=True)
    story = await request.app[keys.STORY_STORE].get_for_user(
        request.match_info["story_id"], claims.user_id
    )
    path = request.app[keys.AUDIO].path(story.id)
    if path is None:
        raise NotFound("the narration is not ready (or was not asked for)")
    return web.FileResponse(path, headers={"Content-Type": AUDIO_FORMAT})
