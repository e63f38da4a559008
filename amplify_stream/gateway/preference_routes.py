"""The user's own preferences (docs/protocol.md section 6, "The writer's say"): the rules
they turned off everywhere, the words they vouch for, the focus a new document or story
reads. Kept on the service, so they follow the writer into every client."""

from __future__ import annotations

from aiohttp import web

from amplify_stream.errors import InvalidMessage
from amplify_stream.gateway import keys
from amplify_stream.gateway.authn import authenticate
from amplify_stream.gateway.http import json_response, parse, read_json
from amplify_stream.gateway.openapi import UNAVAILABLE, Auth, Operation, Reply, describe, error
from amplify_stream.gateway.schemas import PreferencesBody, PreferencesView

routes = web.RouteTableDef()


@routes.get("/v1/me/preferences")
@describe(
    Operation(
        summary="Your preferences: rules off, words you vouch for, default focus",
        tag="suggestions",
        auth=Auth.BEARER,
        replies={200: Reply("Your preferences.", PreferencesView), 503: UNAVAILABLE},
    )
)
async def get_preferences(request: web.Request) -> web.Response:
    claims = authenticate(request)
    prefs = await request.app[keys.PREFERENCES].get(claims.user_id)
    return json_response(PreferencesView.of(prefs).model_dump(mode="json"))


@routes.put("/v1/me/preferences")
@describe(
    Operation(
        summary="Replace your preferences",
        description=(
            "Every document of yours hears them at once, and every story submitted after; "
            "each rule and word added or taken away is a ``suggestion.feedback`` outcome."
        ),
        tag="suggestions",
        auth=Auth.BEARER,
        body=PreferencesBody,
        replies={
            200: Reply("Your preferences, as stored.", PreferencesView),
            400: error(
                "Not valid preferences: an unknown rule, a word too long, too many of either."
            ),
            409: error("They changed since the ``revision`` given: read them again."),
            503: UNAVAILABLE,
        },
    )
)
async def put_preferences(request: web.Request) -> web.Response:
    claims = authenticate(request)
    body = parse(PreferencesBody, await read_json(request), InvalidMessage)
    prefs = await request.app[keys.DOCUMENTS].say.replace(
        claims.user_id, body.rules_off, body.words, body.focus, body.revision
    )
    return json_response(PreferencesView.of(prefs).model_dump(mode="json"))
