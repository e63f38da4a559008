"""The catalogue of suggestion rules (``GET /v1/rules``): what each suggestion's ``rule``
means, so a client can explain it, and a writer decide what to turn off."""

from __future__ import annotations

from aiohttp import web

from amplify_stream.gateway.authn import authenticate
from amplify_stream.gateway.http import json_response
from amplify_stream.gateway.openapi import Auth, Operation, Reply, describe
from amplify_stream.gateway.schemas import RuleList
from amplify_stream.providers.local.rules import RULES

routes = web.RouteTableDef()

_BODY = RuleList.of(RULES.values()).model_dump(mode="json")


@routes.get("/v1/rules")
@describe(
    Operation(
        summary="The suggestion rules: what each looks for, with an example",
        tag="suggestions",
        auth=Auth.BEARER,
        replies={200: Reply("Every rule of the catalogue.", RuleList)},
    )
)
async def list_rules(request: web.Request) -> web.Response:
    authenticate(request)
    return json_response(_BODY)
