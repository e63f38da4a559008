"""Story routes over HTTP: submit (202, or SSE), the events of a story (SSE), cancel."""

from __future__ import annotations

from aiohttp import web

from amplify_stream.errors import InvalidStory, NotFound
from amplify_stream.events import StoryAccepted, StoryOptions
from amplify_stream.gateway import keys
from amplify_stream.gateway.authn import authenticate
from amplify_stream.gateway.http import json_response, parse, read_json
from amplify_stream.gateway.sse import stream_events
from amplify_stream.speech.base import AUDIO_FORMAT

routes = web.RouteTableDef()


def _links(story_id: str) -> dict[str, str]:
    base = f"/v1/stories/{story_id}"
    return {"self": base, "events": f"{base}/events", "audio": f"{base}/audio"}


def _wants_sse(request: web.Request) -> bool:
    return "text/event-stream" in request.headers.get("Accept", "")


@routes.post("/v1/stories")
async def submit(request: web.Request) -> web.StreamResponse:
    claims = authenticate(request)
    options = parse(StoryOptions, await read_json(request), InvalidStory)
    stories = request.app[keys.STORIES]
    accepted = await stories.submit(claims.user_id, options)
    if not _wants_sse(request):
        if accepted.subscription is not None:
            request.app[keys.RELAY].unsubscribe(accepted.subscription)
        body = {
            "story_id": accepted.story_id,
            "status": "queued",
            "links": _links(accepted.story_id),
        }
        return json_response(body, 202, {"Location": f"/v1/stories/{accepted.story_id}"})
    first = StoryAccepted(
        story_id=accepted.story_id, user_id=claims.user_id, request_id=options.request_id
    )
    return await stream_events(
        request,
        stories.watch(accepted),
        first=(first.type, first.model_dump_json()),
        story_id=accepted.story_id,
    )


@routes.get("/v1/stories/{story_id}/events")
async def events(request: web.Request) -> web.StreamResponse:
    claims = authenticate(request, query=True)
    cursor = request.headers.get("Last-Event-ID") or request.query.get("cursor")
    stories = request.app[keys.STORIES]
    accepted = await stories.find(claims.user_id, request.match_info["story_id"], cursor)
    return await stream_events(request, stories.watch(accepted), story_id=accepted.story_id)


@routes.post("/v1/stories/{story_id}/cancel")
async def cancel(request: web.Request) -> web.Response:
    claims = authenticate(request)
    story_id = request.match_info["story_id"]
    await request.app[keys.STORIES].cancel(claims.user_id, story_id)
    return json_response({"story_id": story_id, "status": "cancelling"}, 202)


@routes.get("/v1/stories/{story_id}/audio")
async def audio(request: web.Request) -> web.StreamResponse:
    claims = authenticate(request, query=True)
    story = await request.app[keys.STORY_STORE].get_for_user(
        request.match_info["story_id"], claims.user_id
    )
    path = request.app[keys.AUDIO].path(story.id)
    if path is None:
        raise NotFound("the narration is not ready (or was not asked for)")
    return web.FileResponse(path, headers={"Content-Type": AUDIO_FORMAT})
