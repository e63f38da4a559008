"""The catalogue of suggestion rules (``GET /v1/rules``): what each suggestion's ``rule``
means, so a client can explain it, and a writer decide what to turn off. ``GET /rules`` is
the same catalogue as a page, one anchor per rule (what an editor's diagnostic links to);
public like ``/docs``: it is documentation, and holds nothing of anyone's."""

from __future__ import annotations

import html

from aiohttp import web

from amplify_stream.gateway.authn import authenticate
from amplify_stream.gateway.http import json_response
from amplify_stream.gateway.openapi import HTML, Auth, Operation, Reply, describe
from amplify_stream.gateway.schemas import RuleList
from amplify_stream.providers.local.rules import RULES, Rule

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


def _entry(rule: Rule) -> str:
    text, start, end = rule.example
    flagged = (
        f"{html.escape(text[:start])}<mark>{html.escape(text[start:end])}</mark>"
        f"{html.escape(text[end:])}"
    )
    off = "" if rule.on_by_default else " (off by default)"
    return (
        f'<section id="{rule.id}"><h2><code>{rule.id}</code>{off}</h2>'
        f"<p>Focus: {rule.focus}. {html.escape(rule.looks_for)}</p>"
        f"<p>Flagged: {flagged}</p><p>Left alone: {html.escape(rule.clean)}</p></section>"
    )


_PAGE = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">'
    "<title>Suggestion rules</title></head><body><h1>Suggestion rules</h1>"
    "<p>Every suggestion names the rule that found it; Gemini's own findings are "
    "<code>model.&lt;focus&gt;</code>. A rule can be turned off for you everywhere "
    "(<code>PUT /v1/me/preferences</code>) or in one document.</p>"
    + "".join(_entry(r) for r in RULES.values())
    + "</body></html>"
)


@routes.get("/rules")
@describe(
    Operation(
        summary="The suggestion rules as a page, one anchor per rule id",
        tag="pages",
        replies={200: Reply("The page.", media=HTML)},
    )
)
async def rules_page(request: web.Request) -> web.Response:
    return web.Response(text=_PAGE, content_type="text/html")
