"""The editor's disabledRules into the writer's preferences, against a scripted
``/v1/me/preferences``: a union written only when it adds a rule, the words and the focus
sent back as they were, a service not up yet tried again, a refusal told to the writer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from amplify_stream.client.api import AmplifyClient
from amplify_stream.lsp.preferences import PATH, PreferenceSync, add_rules_off


class Preferences:
    def __init__(self) -> None:
        self.held: dict[str, Any] = {
            "rules_off": ["plot.filler"],
            "words": ["Mara"],
            "focus": None,
            "revision": 3,
        }
        self.puts: list[dict[str, Any]] = []
        self.headers: list[str | None] = []
        self.unavailable = 0  # answers 503 this many times first
        self.refuse: str | None = None
        self.changed_meanwhile = 0  # answers 409 this many times first (another client)

    async def get(self, request: web.Request) -> web.Response:
        self.headers.append(request.headers.get("Authorization"))
        if self.unavailable:
            self.unavailable -= 1
            error = {"code": "unavailable", "message": "the store", "retryable": True}
            return web.json_response({"error": error}, status=503)
        return web.json_response(self.held)

    async def put(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.refuse:
            error = {"code": "invalid_message", "message": self.refuse, "retryable": False}
            return web.json_response({"error": error}, status=400)
        if self.changed_meanwhile:
            self.changed_meanwhile -= 1
            self.held = {**self.held, "words": [*self.held["words"], "Zed"], "revision": 4}
            error = {"code": "conflict", "message": "changed since", "retryable": False}
            return web.json_response({"error": error}, status=409)
        self.puts.append(body)
        self.held = {**body, "revision": body["revision"] + 1}
        return web.json_response(body)


@pytest.fixture
async def service() -> AsyncIterator[tuple[Preferences, AmplifyClient]]:
    prefs = Preferences()
    app = web.Application()
    app.router.add_get(PATH, prefs.get)
    app.router.add_put(PATH, prefs.put)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    client = AmplifyClient(str(server.make_url("")), token="t", backoff_s=0.001)
    try:
        yield prefs, client
    finally:
        await client.close()
        await server.close()


async def test_a_union_written_only_when_it_adds_a_rule(
    service: tuple[Preferences, AmplifyClient],
) -> None:
    prefs, client = service
    assert await add_rules_off(client, ["plot.filler"]) is False
    assert prefs.puts == []
    assert await add_rules_off(client, ["plot.passive", "plot.filler", "plot.passive"]) is True
    assert prefs.puts == [
        {
            "rules_off": ["plot.filler", "plot.passive"],
            "words": ["Mara"],
            "focus": None,
            "revision": 3,
        }
    ]
    assert prefs.headers == ["Bearer t"] * 3  # a GET for each union, and the one it writes on


async def test_a_change_from_another_client_meanwhile_is_read_again_not_lost(
    service: tuple[Preferences, AmplifyClient],
) -> None:
    prefs, client = service
    prefs.changed_meanwhile = 1
    told: list[str] = []
    sync = PreferenceSync(client, told.append)
    sync.want_off(("plot.passive",))
    await sync.settled()
    assert told == []
    assert prefs.puts[-1]["revision"] == 4 and prefs.puts[-1]["words"] == ["Mara", "Zed"]


async def test_the_sync_tries_again_while_the_service_is_away_and_tells_a_refusal(
    service: tuple[Preferences, AmplifyClient],
) -> None:
    prefs, client = service
    told: list[str] = []
    sync = PreferenceSync(client, told.append)
    prefs.unavailable = 2
    sync.want_off(("plot.passive",))
    await sync.settled()
    assert prefs.held["rules_off"] == ["plot.filler", "plot.passive"] and told == []

    prefs.refuse = "no such rule: x.y"
    sync.want_off(("x.y",))
    await sync.settled()
    assert len(prefs.puts) == 1
    assert told == ["amplify: disabledRules not saved: no such rule: x.y"]
