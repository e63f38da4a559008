"""gateway/document_routes.py on both buses: ``GET /v1/documents``, ``GET`` and ``DELETE
/v1/documents/{doc_id}`` (docs/protocol.md section 6). Documents are created in the store
as the gateway does, and changed by snapshots written straight onto the snapshots topic,
which the projector of the service folds in (no owner needed)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from amplify_stream.bus.base import Position
from amplify_stream.events import encode, headers_for
from amplify_stream.events.documents import (
    DocumentDeleted,
    DocumentSnapshot,
    LiveSuggestionRecord,
)
from amplify_stream.gateway import keys
from tests.integration.conftest import Service
from tests.integration.test_projector import RFC3339_MS_Z, auth, get_json, until
from tests.support import sign_up

StartService = Callable[..., Awaitable[Service]]

DETAIL_FIELDS = {
    "doc_id",
    "title",
    "version",
    "text",
    "focus",
    "suggestions",
    "updated_at",
    "ignores",
}
SUGGESTION_FIELDS = {
    "id", "focus", "quote", "start", "end", "start_utf16", "end_utf16", "message", "replacement",
    "rule",
}  # fmt: skip
# A character outside the BMP before the second quote: its two spans differ by one.
TEXT = "A 🌊 wave.\nMara waits."


async def user_id(session: aiohttp.ClientSession, svc: Service, token: str) -> str:
    async with session.get(f"{svc.base}/v1/auth/me", headers=auth(token)) as res:
        uid: str = (await res.json())["id"]
        return uid


async def create(svc: Service, doc_id: str, uid: str, title: str | None = None) -> None:
    """The row the gateway writes when a document is created."""
    store = svc.app[keys.DOCUMENT_STORE]
    await store.create(doc_id, uid, title=title, focus=["plot", "dialogue"], text="Draft.")


async def put_snapshot(svc: Service, snapshot: DocumentSnapshot) -> None:
    """What an owner's checkpoint writes (outside a transaction: read_committed sees it)."""
    producer = svc.app[keys.BUS].producer(client_id="test-snapshots")
    await producer.start()
    try:
        await producer.send_and_wait(
            svc.topics.snapshots, snapshot.doc_id, encode(snapshot), headers_for(snapshot.type)
        )
    finally:
        await producer.stop()


def snapshot(doc_id: str, uid: str, version: int, **fields: Any) -> DocumentSnapshot:
    values: dict[str, Any] = {
        "doc_id": doc_id, "user_id": uid, "created_at": "2030-01-01T00:00:00.000Z",
        "offset": version, "title": "Draft", "focus": ["plot", "dialogue"], "text": TEXT,
        "version": version, "suggestions": [], "current": [True, True], "ids": 0,
        "across": [],
    }  # fmt: skip
    return DocumentSnapshot(**(values | fields))


async def projected(svc: Service, doc_id: str, uid: str, version: int) -> None:
    store = svc.app[keys.DOCUMENT_STORE]

    async def there() -> bool:
        return (await store.get_for_user(doc_id, uid)).version == version

    await until(there)


async def test_the_routes_need_a_token(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service()
    for method, path in (
        ("GET", "/v1/documents"),
        ("GET", "/v1/documents/d1"),
        ("DELETE", "/v1/documents/d1"),
    ):
        for headers in ({}, auth("not-a-token")):
            async with session.request(method, svc.base + path, headers=headers) as res:
                assert res.status == 401, (method, path)
                assert (await res.json())["error"]["code"] == "unauthorized"


async def test_a_document_with_its_live_suggestions(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service()
    token = await sign_up(session, svc.base, "ada")
    uid = await user_id(session, svc, token)
    await create(svc, "d1", uid, title="Draft")
    url = f"{svc.base}/v1/documents/d1"

    body = await get_json(session, url, token)
    assert set(body) == DETAIL_FIELDS
    assert (body["doc_id"], body["title"], body["version"]) == ("d1", "Draft", 0)
    assert (body["text"], body["focus"], body["suggestions"]) == (
        "Draft.",
        ["plot", "dialogue"],
        [],
    )
    assert RFC3339_MS_Z.match(body["updated_at"])

    # The live set as the owner keeps it (UTF-16 spans, in no particular order).
    mara = LiveSuggestionRecord(
        id="s2", focus="character", quote="Mara", message="Who is Mara?",
        start_utf16=11, end_utf16=15,
    )  # fmt: skip
    wave = LiveSuggestionRecord(
        id="s1", focus="plot", quote="wave", message="Which wave?", replacement="swell",
        start_utf16=5, end_utf16=9,
    )  # fmt: skip
    await put_snapshot(svc, snapshot("d1", uid, 4, suggestions=[mara, wave], ids=2))
    await projected(svc, "d1", uid, 4)
    body = await get_json(session, url, token)
    assert (body["version"], body["text"]) == (4, TEXT)
    suggestions = body["suggestions"]
    assert all(set(s) == SUGGESTION_FIELDS for s in suggestions)
    # In the order of the text, with both spans, each slicing out its quote.
    assert [s["id"] for s in suggestions] == ["s1", "s2"]
    assert [(s["start"], s["end"], s["start_utf16"], s["end_utf16"]) for s in suggestions] == [
        (4, 8, 5, 9),
        (10, 14, 11, 15),
    ]
    utf16 = TEXT.encode("utf-16-le")
    for s in suggestions:
        assert TEXT[s["start"] : s["end"]] == s["quote"]
        part = utf16[2 * s["start_utf16"] : 2 * s["end_utf16"]]
        assert part.decode("utf-16-le") == s["quote"]
    assert (suggestions[0]["replacement"], suggestions[1]["replacement"]) == ("swell", None)
    assert (suggestions[1]["focus"], suggestions[1]["message"]) == ("character", "Who is Mara?")


async def test_another_users_document_is_not_found(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service()
    ada = await sign_up(session, svc.base, "ada")
    bob = await sign_up(session, svc.base, "bob")
    await create(svc, "ada-doc", await user_id(session, svc, ada))
    answers: list[dict[str, Any]] = []
    for doc_id in ("ada-doc", "no-such-doc"):
        url = f"{svc.base}/v1/documents/{doc_id}"
        answers.append(await get_json(session, url, bob, status=404))
        async with session.delete(url, headers=auth(bob)) as res:
            assert res.status == 404
            answers.append(await res.json())
    # Nothing tells another user's document from a missing one.
    assert all(a == answers[0] for a in answers)
    assert answers[0]["error"]["code"] == "not_found"
    # And it is still there for its owner.
    await get_json(session, f"{svc.base}/v1/documents/ada-doc", ada)


@pytest.mark.parametrize("bus_kind", ["memory"], indirect=True)
async def test_list_is_newest_first_and_pages(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service()
    ada = await sign_up(session, svc.base, "ada")
    bob = await sign_up(session, svc.base, "bob")
    uid = await user_id(session, svc, ada)
    base = f"{svc.base}/v1/documents"
    assert await get_json(session, base, ada) == {"documents": [], "next": None}
    ids = [f"d{i}" for i in range(5)]
    for i, doc_id in enumerate(ids):
        await create(svc, doc_id, uid, title=f"draft {i}")
    created_order = ids[::-1]
    listed = await get_json(session, base, ada)
    assert [d["doc_id"] for d in listed["documents"]] == created_order
    first = listed["documents"][0]
    assert set(first) == {"doc_id", "title", "version", "created_at", "updated_at"}
    assert (first["title"], first["version"]) == ("draft 4", 0)
    assert RFC3339_MS_Z.match(first["created_at"]) and RFC3339_MS_Z.match(first["updated_at"])

    # Edits move a document to the front: d2, then d0, edited last.
    for doc_id in ("d2", "d0"):
        await put_snapshot(svc, snapshot(doc_id, uid, 1, at="2099-01-01T00:00:00.000Z"))
        await projected(svc, doc_id, uid, 1)
    await put_snapshot(svc, snapshot("d0", uid, 2, at="2099-01-01T00:00:01.000Z"))
    await projected(svc, "d0", uid, 2)
    newest_first = ["d0", "d2", "d4", "d3", "d1"]

    pages: list[list[str]] = []
    url: str | None = f"{base}?limit=2"
    while url is not None:
        page = await get_json(session, url, ada)
        pages.append([d["doc_id"] for d in page["documents"]])
        url = None if page["next"] is None else f"{base}?limit=2&before={page['next']}"
    assert pages == [newest_first[:2], newest_first[2:4], newest_first[4:]]

    assert await get_json(session, base, bob) == {"documents": [], "next": None}
    for query in ("limit=0", "limit=101", "limit=two", "limit=", "before="):
        error = await get_json(session, f"{base}?{query}", ada, status=400)
        assert error["error"]["code"] == "invalid_message", query
    # A ``before`` that is not one of yours: the same answer, whoever's it is.
    not_mine = await get_json(session, f"{base}?before=d0", bob, status=400)
    missing = await get_json(session, f"{base}?before=no-such-doc", bob, status=400)
    assert not_mine == missing


async def test_delete_publishes_the_command_and_removes_the_row(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service()
    token = await sign_up(session, svc.base, "ada")
    uid = await user_id(session, svc, token)
    await create(svc, "d1", uid)
    await create(svc, "d2", uid)
    url = f"{svc.base}/v1/documents/d1"
    async with session.delete(url, headers=auth(token)) as res:
        assert res.status == 204
        assert await res.read() == b""

    await get_json(session, url, token, status=404)
    listed = await get_json(session, f"{svc.base}/v1/documents", token)
    assert [d["doc_id"] for d in listed["documents"]] == ["d2"]
    async with session.delete(url, headers=auth(token)) as res:
        assert res.status == 404  # gone

    # The command went to the owners: on the documents topic, keyed by doc_id.
    bus, topic = svc.app[keys.BUS], svc.topics.documents
    partition = bus.partition_for(topic, "d1", svc.settings.topic_partitions)
    async with asyncio.timeout(30), bus.read(topic, {partition: 0}) as records:
        record = await anext(aiter(records))
    assert record.key == "d1"
    assert record.header("event-type") == b"document.deleted"
    command = DocumentDeleted.model_validate_json(record.value)
    assert (command.doc_id, command.user_id) == ("d1", uid)
    assert json.loads(record.value)["type"] == "document.deleted"


@pytest.mark.parametrize("bus_kind", ["memory"], indirect=True)
async def test_delete_with_the_bus_away_deletes_nothing(
    service: StartService, session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = await service(bus_timeout_s=0.2)
    token = await sign_up(session, svc.base, "ada")
    uid = await user_id(session, svc, token)
    await create(svc, "d1", uid)

    async def unanswered(event: DocumentDeleted) -> Position:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    monkeypatch.setattr(svc.app[keys.DOCUMENTS].commands, "delete", unanswered)
    url = f"{svc.base}/v1/documents/d1"
    async with session.delete(url, headers=auth(token)) as res:
        assert res.status == 503
        body = await res.json()
    assert body["error"]["code"] == "unavailable" and body["error"]["retryable"] is True
    assert (await get_json(session, url, token))["doc_id"] == "d1"
