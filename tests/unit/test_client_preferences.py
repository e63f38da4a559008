"""The client's preferences (section 6, "The writer's say"): the change made on what was
read, against a scripted ``/v1/me/preferences``: a ``PUT`` only when something changes,
at the revision read, what another client changed meanwhile read again and kept."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from amplify_stream.client import KEEP, AmplifyClient, ClientError, PreferenceChange, Preferences
from amplify_stream.client.preferences import PATH

HELD = Preferences(("plot.filler",), ("Mara",), ("plot", "dialogue"), 3, "2026-05-01T12:00:00Z")


def test_a_change_keeps_what_it_does_not_name() -> None:
    changed = PreferenceChange(rules_off=("plot.passive", "plot.filler"), words=("Maura",)).applied(
        HELD
    )
    assert changed == Preferences(
        ("plot.filler", "plot.passive"),
        ("Mara", "Maura"),
        ("plot", "dialogue"),
        3,
        HELD.updated_at,
    )
    off = PreferenceChange(rules_on=("plot.filler",), remove_words=("Mara", "Zed"), focus=None)
    assert not off.empty
    assert (off.applied(HELD).rules_off, off.applied(HELD).words) == ((), ())
    assert off.applied(HELD).focus is None
    assert PreferenceChange(focus=["setting", "setting"]).applied(HELD).focus == ("setting",)
    assert PreferenceChange(focus=KEEP).empty and PreferenceChange().applied(HELD) == HELD
    # Taken away wins over added in the same change.
    assert PreferenceChange(words=("Zed",), remove_words=("Zed",)).applied(HELD).words == ("Mara",)


def test_the_body_is_the_put_at_the_revision_read() -> None:
    assert HELD.body() == {
        "rules_off": ["plot.filler"],
        "words": ["Mara"],
        "focus": ["plot", "dialogue"],
        "revision": 3,
    }
    view = {"rules_off": [], "words": ["a"], "focus": None, "revision": 0, "updated_at": None}
    assert Preferences.from_json(view) == Preferences(words=("a",))
    assert Preferences.from_json(HELD.body() | {"updated_at": HELD.updated_at}) == HELD


def test_the_same_preferences_whatever_their_order() -> None:
    assert Preferences(("b", "a"), ("y", "x")).same_as(Preferences(("a", "b"), ("x", "y")))
    assert not Preferences(focus=("plot",)).same_as(Preferences())


class Scripted:
    """``/v1/me/preferences`` as the gateway answers it: the stored shape, sorted, the
    revision moved by a change; a 409 for a PUT from an old revision."""

    def __init__(self) -> None:
        self.held = HELD.body() | {"updated_at": HELD.updated_at}
        self.puts: list[dict[str, Any]] = []
        self.changed_meanwhile = 0  # another client's change lands before this many PUTs

    async def get(self, request: web.Request) -> web.Response:
        assert request.headers.get("Authorization") == "Bearer t"
        return web.json_response(self.held)

    async def put(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.puts.append(body)
        if self.changed_meanwhile:
            self.changed_meanwhile -= 1
            words = sorted({*self.held["words"], "Zed"})
            self.held = self.held | {"words": words, "revision": self.held["revision"] + 1}
        if body.get("revision") is not None and body["revision"] != self.held["revision"]:
            error = {"code": "conflict", "message": "changed since", "retryable": False}
            return web.json_response({"error": error}, status=409)
        self.held = {
            "rules_off": sorted(set(body["rules_off"])),
            "words": sorted(set(body["words"])),
            "focus": body.get("focus"),
            "revision": self.held["revision"] + 1,
            "updated_at": "2026-05-01T12:01:00Z",
        }
        return web.json_response(self.held)


@pytest.fixture
async def service() -> AsyncIterator[tuple[Scripted, AmplifyClient]]:
    scripted = Scripted()
    app = web.Application()
    app.router.add_get(PATH, scripted.get)
    app.router.add_put(PATH, scripted.put)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    client = AmplifyClient(str(server.make_url("")), token="t")
    try:
        yield scripted, client
    finally:
        await client.close()
        await server.close()


async def test_read_and_replace(service: tuple[Scripted, AmplifyClient]) -> None:
    scripted, client = service
    assert await client.preferences() == HELD
    stored = await client.set_preferences(rules_off=["plot.passive"], words=[], revision=3)
    assert scripted.puts == [
        {"rules_off": ["plot.passive"], "words": [], "focus": None, "revision": 3}
    ]
    assert (stored.rules_off, stored.words, stored.focus, stored.revision) == (
        ("plot.passive",),
        (),
        None,
        4,
    )
    with pytest.raises(ClientError) as refused:
        await client.set_preferences(rules_off=[], words=[], revision=3)
    assert (refused.value.code, refused.value.status) == ("conflict", 409)


async def test_a_change_is_put_at_the_revision_read_and_only_when_it_changes_something(
    service: tuple[Scripted, AmplifyClient],
) -> None:
    scripted, client = service
    same = await client.change_preferences(
        PreferenceChange(rules_off=("plot.filler",), words=("Mara",))
    )
    assert same == HELD and scripted.puts == []
    stored = await client.change_preferences(
        PreferenceChange(rules_off=("plot.passive",), remove_words=("Mara",))
    )
    assert scripted.puts == [
        {
            "rules_off": ["plot.filler", "plot.passive"],
            "words": [],
            "focus": ["plot", "dialogue"],
            "revision": 3,
        }
    ]
    assert (stored.rules_off, stored.words, stored.revision) == (
        ("plot.filler", "plot.passive"),
        (),
        4,
    )


async def test_another_clients_change_meanwhile_is_read_again_and_kept(
    service: tuple[Scripted, AmplifyClient],
) -> None:
    scripted, client = service
    scripted.changed_meanwhile = 2
    stored = await client.change_preferences(PreferenceChange(words=("Maura",), focus=None))
    assert [put["revision"] for put in scripted.puts] == [3, 4, 5]
    assert stored.words == ("Mara", "Maura", "Zed") and stored.focus is None
    scripted.changed_meanwhile = 2
    with pytest.raises(ClientError) as gave_up:
        await client.change_preferences(PreferenceChange(rules_off=("plot.passive",)), attempts=2)
    assert gave_up.value.code == "conflict"
