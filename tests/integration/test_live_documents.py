"""Live documents through the whole service (docs/protocol.md section 6), on both buses:
a writer types key by key and marks appear, move and go; a burst of edits gets one pass;
two sockets (on two gateways with Kafka) race for a version and exactly one wins; a
reopen on another gateway has every acknowledged edit; the section's refusals leave the
document as it was and the socket open."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from amplify_stream.bus.memory import MemoryBus
from amplify_stream.gateway import keys
from amplify_stream.providers.local.rules import RULES
from amplify_stream.text.edits import Change, utf16_length
from tests.integration.conftest import Service
from tests.live_documents import check_marks, writer
from tests.support import sign_up

StartService = Callable[..., Awaitable[Service]]

FAST = {"doc_idle_ms": 150, "doc_snapshot_ms": 200}


async def test_marks_appear_move_and_go_as_the_writer_types(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service(**FAST)
    token = await sign_up(session, svc.base, "ada")
    async with writer(session, svc.base, token) as w:
        doc = await w.open("🌊 The harbour 港口.\n", title="Harbour")
        await w.settled()
        await w.type("Mara was very angry at the wall.")
        await w.settled()
        quotes = {m.event["quote"]: m for m in doc.marks.values()}
        assert {"was very angry", "very angry"} <= set(quotes), quotes
        check_marks(doc)
        # Text typed before the marks moves them; the client and the service agree.
        await w.edit(Change(0, 0, "Dawn. "))
        await w.settled()
        check_marks(doc)
        assert {m.event["quote"] for m in doc.marks.values()} >= {"was very angry"}
        # Each names its rule, as the catalogue does.
        assert quotes["was very angry"].event["rule"] == "character.telling"
        assert quotes["very angry"].event["rule"] == "plot.intensifier"
        # Deleting the marked words takes their marks at once (the client's own rule),
        # and the service's retraction says the same.
        marked = quotes["very angry"]
        gone = {quotes["very angry"].id, quotes["was very angry"].id}
        await w.edit(Change(marked.start_utf16, marked.end_utf16, "furious"))
        assert not gone & set(doc.marks)
        await w.settled()
        retracted = {i for r in w.of("doc.retracted") for i in r["ids"]}
        assert gone <= retracted
        check_marks(doc)
        analyzed = w.of("doc.analyzed")[-1]
        assert analyzed["suggestions"] == len(doc.marks)
        assert analyzed["paragraphs"] == 2 and analyzed["reanalyzed"] == 1
    # The store has it too (the owner's snapshot, projected).
    async with session.get(
        f"{svc.base}/v1/documents/{doc.doc_id}", headers={"Authorization": f"Bearer {token}"}
    ) as res:
        stored = await res.json()
    for _ in range(50):
        if stored.get("version") == doc.version:
            break
        await asyncio.sleep(0.1)
        async with session.get(
            f"{svc.base}/v1/documents/{doc.doc_id}", headers={"Authorization": f"Bearer {token}"}
        ) as res:
            stored = await res.json()
    assert (stored["text"], stored["version"]) == (doc.text, doc.version)
    assert {s["id"] for s in stored["suggestions"]} == set(doc.marks)
    assert all(s["rule"] in RULES for s in stored["suggestions"])


async def test_a_burst_of_edits_gets_one_pass_for_its_last_version(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service(doc_idle_ms=300)
    token = await sign_up(session, svc.base, "ada")
    async with writer(session, svc.base, token) as w:
        await w.open("\n".join(f"Scene {i}: the harbour wall." for i in range(50)))
        doc = await w.settled()
        before = len(w.of("doc.analyzed"))
        # Thirty keys, far quicker than the idle time, in one paragraph of fifty.
        at = utf16_length(doc.text.split("\n")[0])
        await w.type(" Mara was very angry.", at=at, keys_per_s=200)
        await w.settled()
        passes = w.of("doc.analyzed")[before:]
        assert [p["version"] for p in passes] == [doc.version]
        assert passes[0]["reanalyzed"] == 1 and passes[0]["paragraphs"] == 50
        assert len(w.of("doc.ack")) == doc.version


async def test_two_sockets_race_for_a_version_and_one_wins(
    service: StartService, session: aiohttp.ClientSession, bus_kind: str
) -> None:
    first = await service(**FAST)
    # With Kafka, the second socket is on another gateway (and its own document owner).
    second = await service(**FAST) if bus_kind == "kafka" else first
    token = await sign_up(session, first.base, "ada")
    async with writer(session, first.base, token) as a, writer(session, second.base, token) as b:
        doc = await a.open("abc")
        await a.settled()
        await b.reopen(doc.doc_id)
        for round_ in range(5):
            version = a.doc.version + 1 if a.doc else 0
            await asyncio.gather(a.edit(Change(0, 0, "A")), b.edit(Change(0, 0, "B")))
            await a.until(
                lambda v=version: a.of("doc.ack", version=v) or a.of("error", version=v),
                "a's answer",
            )
            await b.until(
                lambda v=version: b.of("doc.ack", version=v) or b.of("error", version=v),
                "b's answer",
            )
            acks = len(a.of("doc.ack", version=version)) + len(b.of("doc.ack", version=version))
            # The loser's conflict names the version the winner's edit made.
            conflicts = [e for w in (a, b) for e in w.of("error") if e["version"] == version]
            assert acks == 1 and len(conflicts) == 1, (round_, a.frames[-3:], b.frames[-3:])
            assert conflicts[0]["code"] == "version_conflict"
            # The loser reopens to catch up, as the section says.
            loser = a if a.of("error", version=version) else b
            winner = b if loser is a else a
            await loser.reopen(doc.doc_id)
            assert loser.doc is not None and winner.doc is not None
            assert loser.doc.text == winner.doc.text
            assert loser.doc.version == version


async def test_a_reopen_elsewhere_has_every_acknowledged_edit(
    service: StartService, session: aiohttp.ClientSession, bus_kind: str
) -> None:
    first = await service(**FAST)
    token = await sign_up(session, first.base, "ada")
    rng = random.Random(7)
    async with writer(session, first.base, token) as w:
        doc = await w.open("Ünïcode 🌊 and 港口 text.\nSecond line.")
        for _ in range(60):
            length = utf16_length(doc.text)
            start = rng.randrange(length + 1)
            end = min(length, start + rng.choice((0, 0, 1, 3)))
            piece = rng.choice(("a", "é", "🌊", "港", "\n", "", "very "))
            try:
                await w.edit(Change(start, end, piece))
            except ValueError:
                continue  # the offset split a surrogate pair: not a change a client makes
        await w.until(lambda: doc.acked == doc.version, "every ack")
        text, version = doc.text, doc.version
    other = await service(**FAST) if bus_kind == "kafka" else first
    async with writer(session, other.base, token) as w2:
        again = await w2.reopen(doc.doc_id)
        assert (again.text, again.version) == (text, version)
        await w2.settled()
        check_marks(again)


async def test_refusals_change_nothing_and_keep_the_socket(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service(**FAST, max_doc_changes=3, doc_edits_per_second=20, max_story_chars=50)
    ada = await sign_up(session, svc.base, "ada")
    bob = await sign_up(session, svc.base, "bob")
    async with writer(session, svc.base, ada) as w, writer(session, svc.base, bob) as other:
        doc = await w.open("a🌊b")
        await w.settled()
        change = {"start_utf16": 0, "end_utf16": 0, "text": "x"}
        refusals = [
            (
                {"version": 1, "changes": [change | {"start_utf16": 2, "end_utf16": 2}]},
                "invalid_message",
            ),  # splits the pair
            (
                {"version": 1, "changes": [change | {"start_utf16": 9, "end_utf16": 9}]},
                "invalid_message",
            ),  # past the end
            (
                {"version": 1, "changes": [change | {"start_utf16": 3, "end_utf16": 1}]},
                "invalid_message",
            ),  # start > end
            ({"version": 2, "changes": [change]}, "version_conflict"),
            ({"version": 1, "changes": [change] * 4}, "invalid_message"),  # too many changes
            ({"version": 1, "changes": [change | {"text": "x" * 60}]}, "story_too_large"),
        ]
        for count, (frame, code) in enumerate(refusals, 1):
            await w.send({"type": "doc.edit", "doc_id": doc.doc_id, **frame})
            await w.until(lambda n=count: len(w.of("error")) == n, f"refusal {count}")
            assert w.of("error")[-1]["code"] == code, (frame, w.of("error")[-1])
        assert all(e["doc_id"] == doc.doc_id for e in w.of("error"))
        assert w.of("error", code="version_conflict")[0]["version"] == 0
        # Nothing applied: the next version is still 1, and the socket still answers.
        await w.edit(Change(4, 4, "!"))
        await w.settled()
        assert doc.text == "a🌊b!"
        # Another user's document is not_found, for reading and for editing.
        await other.send({"type": "doc.open", "doc_id": doc.doc_id})
        edit = {"start_utf16": 0, "end_utf16": 0, "text": "x"}
        await other.send(
            {"type": "doc.edit", "doc_id": doc.doc_id, "version": 2, "changes": [edit]}
        )
        backwards = {"start_utf16": 3, "end_utf16": 1, "text": ""}
        await other.send(
            {"type": "doc.edit", "doc_id": doc.doc_id, "version": 2, "changes": [backwards]}
        )
        await other.until(lambda: len(other.of("error")) == 3, "bob's refusals")
        assert [e["code"] for e in other.of("error")] == ["not_found"] * 3
        # And bob hears nothing of ada's document afterwards: not her passes' suggestions.
        await w.type(" Mara was very angry.", keys_per_s=15)
        await w.settled()
        assert {f["type"] for f in other.frames} == {"error"}
        # Past the edit rate: rate_limited, nothing of it applied.
        for _ in range(40):
            await w.edit(Change(0, 0, "z"))
            if w.of("error", code="rate_limited"):
                break
        await w.until(lambda: w.of("error", code="rate_limited"), "rate_limited")
        limited = w.of("error", code="rate_limited")[0]
        assert limited["retryable"] is True


async def test_documents_per_user_are_limited_and_a_delete_frees_one(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service(**FAST, max_documents_per_user=2)
    token = await sign_up(session, svc.base, "ada")
    headers = {"Authorization": f"Bearer {token}"}
    async with writer(session, svc.base, token) as w:
        first = await w.open("one")
        await w.open("two")
        await w.send({"type": "doc.open", "text": "three", "request_id": "r3"})
        await w.until(lambda: w.of("error", request_id="r3"), "the refusal")
        refused = w.of("error", request_id="r3")[0]
        assert refused["code"] == "rate_limited" and refused["retryable"] is True
        async with session.delete(
            f"{svc.base}/v1/documents/{first.doc_id}", headers=headers
        ) as res:
            assert res.status == 204
        await w.open("three")
        # Its owner tombstones it on its topics: the last record of its key on the edit
        # log and on the snapshots topic has no value (compaction then forgets it).
        for topic in (svc.topics.documents, svc.topics.snapshots):
            await tombstoned(svc, topic, first.doc_id)
        # The deleted one is gone for reopening too.
        await w.send({"type": "doc.open", "doc_id": first.doc_id, "request_id": "r4"})
        await w.until(lambda: w.of("error", request_id="r4"), "not_found")
        assert w.of("error", request_id="r4")[0]["code"] == "not_found"


@pytest.mark.parametrize("bus_kind", ["memory"], indirect=True)
async def test_an_edit_the_bus_does_not_take_is_refused_and_not_applied(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service(**FAST)
    token = await sign_up(session, svc.base, "ada")
    bus = svc.app[keys.BUS]
    assert isinstance(bus, MemoryBus)
    async with writer(session, svc.base, token) as w:
        doc = await w.open("abc")
        await w.settled()
        bus.set_reachable(False)
        await w.send(
            {
                "type": "doc.edit",
                "doc_id": doc.doc_id,
                "version": 1,
                "request_id": "e1",
                "changes": [{"start_utf16": 3, "end_utf16": 3, "text": "d"}],
            }
        )
        await w.until(lambda: w.of("error", request_id="e1"), "the refusal")
        refused = w.of("error", request_id="e1")[0]
        assert (refused["code"], refused["retryable"], refused["doc_id"]) == (
            "unavailable",
            True,
            doc.doc_id,
        )
        bus.set_reachable(True)
        again = await w.reopen(doc.doc_id)
        assert (again.text, again.version) == ("abc", 0)


async def tombstoned(svc: Service, topic: str, doc_id: str) -> None:
    """Until the last committed record of ``doc_id`` on ``topic`` is a tombstone."""
    bus = svc.app[keys.BUS]
    partition = bus.partition_for(topic, doc_id, len(await bus.end_offsets(topic)))
    async with asyncio.timeout(20):
        while True:
            end = (await bus.end_offsets(topic))[partition]
            records = await bus.read_range(topic, partition, 0, end, isolation="read_committed")
            mine = [r for r in records if r.key == doc_id]
            if mine and mine[-1].value == b"":
                return
            await asyncio.sleep(0.2)
