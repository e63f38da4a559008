"""``GET /v1/rules``: the catalogue every suggestion's ``rule`` points into."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp

from amplify_stream.providers.local.rules import RULES
from tests.integration.conftest import Service
from tests.integration.test_projector import auth, get_json
from tests.support import sign_up

StartService = Callable[..., Awaitable[Service]]


async def test_the_rules_need_a_token_and_name_every_rule(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service()
    for headers in ({}, auth("not-a-token")):
        async with session.get(f"{svc.base}/v1/rules", headers=headers) as res:
            assert res.status == 401
    token = await sign_up(session, svc.base, "ruler")
    body = await get_json(session, f"{svc.base}/v1/rules", token)
    assert [r["id"] for r in body["rules"]] == list(RULES)
    for r in body["rules"]:
        assert set(r) == {"id", "focus", "looks_for", "flagged", "clean", "on_by_default"}
        flagged = r["flagged"]
        assert 0 <= flagged["start"] < flagged["end"] <= len(flagged["text"])
        assert "[[" not in flagged["text"]
    off = {r["id"] for r in body["rules"] if not r["on_by_default"]}
    assert off == {"plot.close_repeat", "plot.filler", "setting.bare_paragraph"}


async def test_the_rules_page_has_an_anchor_for_every_rule(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    """What an editor's diagnostic links to (``codeDescription``): public, like ``/docs``."""
    svc = await service()
    async with session.get(f"{svc.base}/rules") as res:
        assert res.status == 200 and res.content_type == "text/html"
        page = await res.text()
    for rule_id in RULES:
        assert f'<section id="{rule_id}">' in page
    assert "<script" not in page
