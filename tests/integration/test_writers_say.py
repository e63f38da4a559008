"""The writer's say through the whole service (docs/protocol.md section 6, "The writer's
say"), on both buses: a dismissal goes at once from every socket watching the document
(on two gateways with Kafka) and stays gone through edits, passes and a reopen; a word
vouched for everywhere and a rule turned off over HTTP reach the user's other documents
and their stories, never another user's; the refusals leave everything as it was."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from amplify_stream.text.edits import Change, utf16_length
from tests.integration.conftest import Service
from tests.live_documents import Writer, writer
from tests.support import sign_up, ws_story

StartService = Callable[..., Awaitable[Service]]

FAST = {"doc_idle_ms": 120, "doc_snapshot_ms": 150}
TEXT = (
    "The dog was very big and the yard was very small.\n"
    "Mara met Maura at the gate. Maura smiled at Mara.\n"
    "It was a very big day."
)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def live(w: Writer, rule: str) -> dict[str, dict[str, Any]]:
    """The writer's live marks of ``rule``, by id."""
    assert w.doc is not None
    return {i: m.event for i, m in w.doc.marks.items() if m.event.get("rule") == rule}


def retracted(w: Writer) -> set[str]:
    return {i for f in w.of("doc.retracted") for i in f["ids"]}


async def preferences(
    session: aiohttp.ClientSession, base: str, token: str, body: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any]]:
    method = "GET" if body is None else "PUT"
    async with session.request(
        method, f"{base}/v1/me/preferences", json=body, headers=auth(token)
    ) as res:
        return res.status, await res.json()


async def test_a_dismissal_goes_from_every_socket_and_never_comes_back(
    service: StartService, session: aiohttp.ClientSession, bus_kind: str
) -> None:
    first = await service(**FAST)
    second = await service(**FAST) if bus_kind == "kafka" else first
    token = await sign_up(session, first.base, "ada")
    async with writer(session, first.base, token) as a, writer(session, second.base, token) as b:
        await a.open(TEXT)
        doc = await a.settled()
        await b.reopen(doc.doc_id)
        intensifiers = live(a, "plot.intensifier")
        dismissed = next(i for i, s in intensifiers.items() if s["quote"] == "very big")
        sentence_of = intensifiers[dismissed]["start"]
        await a.send(
            {"type": "doc.dismiss", "doc_id": doc.doc_id, "id": dismissed, "request_id": "d1"}
        )
        for w in (a, b):
            await w.until(lambda w=w: dismissed in retracted(w), "the retraction")
            await w.until(lambda w=w: w.of("doc.ignores", request_id="d1"), "doc.ignores")
        said = a.of("doc.ignores", request_id="d1")[0]
        assert [d["id"] for d in said["dismissed"]] == [dismissed]
        # Typing in its paragraph, after its sentence, with passes between: the paragraph
        # is read again and finds it again each time, and it stays gone; the same words
        # elsewhere keep their marks.
        assert sentence_of < utf16_length(TEXT.split("\n")[0])
        for n in range(5):
            assert a.doc is not None
            await a.type(f" More {n}.", at=utf16_length(a.doc.text.split("\n")[0]))
            await a.settled()
            assert a.of("doc.analyzed")[-1]["reanalyzed"] == 1
            quotes = sorted(s["quote"] for s in live(a, "plot.intensifier").values())
            assert quotes == ["very big", "very small"], quotes
        heard = [f for f in a.frames + b.frames if f["type"] == "doc.suggestion"]
        again = [
            f
            for f in heard
            if f["rule"] == "plot.intensifier" and f["quote"] == "very big" and f["start"] < 40
        ]
        assert [f["id"] for f in again] == [dismissed] * len(again)
    # A reopen (on another gateway with Kafka) still holds it, and says so.
    async with writer(session, second.base, token) as c:
        await c.reopen(doc.doc_id)
        await c.until(lambda: c.of("doc.ignores"), "the document's ignores on reopen")
        assert dismissed not in live(c, "plot.intensifier")
        assert len(live(c, "plot.intensifier")) == 2
    async with session.get(f"{first.base}/v1/documents/{doc.doc_id}", headers=auth(token)) as r:
        stored = await r.json()
    assert [d["id"] for d in stored["ignores"]["dismissed"]] == [dismissed]


async def test_the_users_preferences_reach_all_their_documents_and_stories(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service(**FAST)
    token = await sign_up(session, svc.base, "ada")
    other = await sign_up(session, svc.base, "bob")
    async with writer(session, svc.base, token) as a, writer(session, svc.base, token) as b:
        await a.open(TEXT)
        doc_a = await a.settled()
        await b.open("Mara met Maura at the gate. Maura smiled at Mara.\nThe sea was very big.")
        await b.settled()
        assert live(b, "character.lookalike_names") and live(b, "plot.intensifier")
        # "This name is right", everywhere, from one document: the other hears it too.
        await a.send(
            {"type": "doc.word", "doc_id": doc_a.doc_id, "word": "Maura", "scope": "everywhere"}
        )
        await b.until(lambda: not live(b, "character.lookalike_names"), "the look-alike gone")
        await a.until(lambda: not live(a, "character.lookalike_names"), "gone here too")
        status, prefs = await preferences(session, svc.base, token)
        assert (status, prefs["words"]) == (200, ["Maura"])
        # A rule turned off over HTTP: gone from both documents at once.
        body = {"rules_off": ["plot.intensifier"], "words": ["Maura"], "focus": None}
        status, prefs = await preferences(session, svc.base, token, body)
        assert status == 200 and prefs["rules_off"] == ["plot.intensifier"]
        assert prefs["revision"] >= 2
        for w in (a, b):
            await w.until(lambda w=w: not live(w, "plot.intensifier"), "the rule's marks gone")
        # ... and from the user's stories (local provider), not another user's.
        text = "Mara met Maura at the gate. Maura smiled at Mara. The dog was very big."
        story = {"text": text, "rewrite": False, "audio": False}
        mine = await ws_story(session, svc.base, token, story)
        theirs = await ws_story(session, svc.base, other, story)
        rules = [e.get("rule") for e in mine if e["type"] == "suggestion"]
        assert "plot.intensifier" not in rules and "character.lookalike_names" not in rules
        their_rules = {e.get("rule") for e in theirs if e["type"] == "suggestion"}
        assert {"plot.intensifier", "character.lookalike_names"} <= their_rules
        # Undo (the rule back on): the marks come back with the next pass.
        body = {"rules_off": [], "words": ["Maura"], "focus": ["plot"]}
        await preferences(session, svc.base, token, body)
        await b.until(lambda: live(b, "plot.intensifier"), "the rule's marks back")
        # The default focus is what a new document reads, and a story sent without one.
        await a.open("Another text.")
        assert a.of("doc.opened")[-1]["focus"] == ["plot"]
        text = '"Come here," Tom said softly. The dog was very big.'
        events = await ws_story(session, svc.base, token, {**story, "text": text})
        assert {e["focus"] for e in events if e["type"] == "suggestion"} == {"plot"}
        events = await ws_story(session, svc.base, other, {**story, "text": text})
        assert {"dialogue", "plot"} <= {e["focus"] for e in events if e["type"] == "suggestion"}
    status, theirs_prefs = await preferences(session, svc.base, other)
    assert (theirs_prefs["rules_off"], theirs_prefs["words"]) == ([], [])


async def test_refusals_change_nothing(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service(**FAST)
    token = await sign_up(session, svc.base, "ada")
    other = await sign_up(session, svc.base, "bob")
    async with writer(session, svc.base, token) as a, writer(session, svc.base, other) as b:
        await a.open(TEXT)
        doc = await a.settled()
        cases: list[tuple[Writer, dict[str, Any], str]] = [
            (a, {"type": "doc.dismiss", "doc_id": doc.doc_id, "id": "nope"}, "not_found"),
            (b, {"type": "doc.dismiss", "doc_id": doc.doc_id, "id": "x"}, "not_found"),
            (b, {"type": "doc.word", "doc_id": doc.doc_id, "word": "Mara"}, "not_found"),
            (a, {"type": "doc.dismiss", "doc_id": doc.doc_id}, "invalid_message"),
            (
                a,
                {"type": "doc.dismiss", "doc_id": doc.doc_id, "id": "x", "scope": "all"},
                "invalid_message",
            ),
            (
                a,
                {
                    "type": "doc.dismiss",
                    "doc_id": doc.doc_id,
                    "rule": "no.such",
                    "scope": "document",
                },
                "invalid_message",
            ),
            (a, {"type": "doc.word", "doc_id": doc.doc_id, "word": " x"}, "invalid_message"),
            (a, {"type": "doc.word", "doc_id": doc.doc_id, "word": "w" * 65}, "invalid_message"),
            (
                a,
                {"type": "doc.word", "doc_id": doc.doc_id, "word": "Zed", "undo": True},
                "not_found",
            ),
        ]
        for n, (w, frame, code) in enumerate(cases):
            request_id = f"r{n}"
            await w.send({**frame, "request_id": request_id})
            await w.until(lambda w=w, r=request_id: w.of("error", request_id=r), code)
            assert w.of("error", request_id=request_id)[0]["code"] == code, frame
        await a.send({"type": "ping", "request_id": "still-open"})
        await a.until(lambda: a.of("pong"), "the socket still open")
        assert not retracted(a) and not a.of("doc.ignores")
    for body in (
        {"rules_off": ["no.such"], "words": []},
        {"rules_off": [], "words": ["w" * 65]},
        {"rules_off": [], "words": [f"w{i}" for i in range(1001)]},
        {"rules_off": [], "words": [], "extra": 1},
    ):
        status, answer = await preferences(session, svc.base, token, body)
        assert (status, answer["error"]["code"]) == (400, "invalid_message"), body
    status, prefs = await preferences(session, svc.base, token)
    assert (prefs["rules_off"], prefs["words"], prefs["revision"]) == ([], [], 0)
    async with session.get(f"{svc.base}/v1/me/preferences") as res:
        assert res.status == 401
    # A read-modify-write from a stale revision loses nobody's change.
    status, prefs = await preferences(
        session, svc.base, token, {"rules_off": [], "words": ["a"], "revision": 0}
    )
    assert (status, prefs["revision"]) == (200, 1)
    stale = {"rules_off": ["plot.passive"], "words": [], "revision": 0}
    status, answer = await preferences(session, svc.base, token, stale)
    assert (status, answer["error"]["code"]) == (409, "conflict")
    status, prefs = await preferences(session, svc.base, token)
    assert (prefs["rules_off"], prefs["words"], prefs["revision"]) == ([], ["a"], 1)


async def test_an_applied_replacement_is_accepted_and_undo_brings_a_dismissal_back(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service(**FAST)
    token = await sign_up(session, svc.base, "ada")
    async with writer(session, svc.base, token) as a:
        await a.open('"Come here," Tom said softly. The dog was very big.')
        doc = await a.settled()
        (tag,) = live(a, "dialogue.adverb_tag").values()
        (big,) = live(a, "plot.intensifier")
        await a.send({"type": "doc.dismiss", "doc_id": doc.doc_id, "id": big})
        await a.until(lambda: big in retracted(a), "the dismissal")
        await a.edit(Change(tag["start_utf16"], tag["end_utf16"], tag["replacement"]))
        await a.settled()
        await a.send(
            {
                "type": "doc.dismiss",
                "doc_id": doc.doc_id,
                "id": big,
                "undo": True,
                "request_id": "u",
            }
        )
        await a.until(lambda: a.of("doc.ignores", request_id="u"), "the undo")
        assert a.of("doc.ignores", request_id="u")[0]["dismissed"] == []
        await a.settled()
        await a.until(lambda: live(a, "plot.intensifier"), "the finding back")
    metrics = await (await session.get(f"{svc.base}/metrics")).text()
    for _ in range(40):  # the owner counts once its checkpoint is committed
        if 'action="accepted",rule="dialogue.adverb_tag"' in metrics:
            break
        await asyncio.sleep(0.1)
        metrics = await (await session.get(f"{svc.base}/metrics")).text()
    assert (
        'amplify_suggestion_feedback_total{action="accepted",rule="dialogue.adverb_tag"} 1.0'
        in (metrics)
    )
    assert 'amplify_suggestion_feedback_total{action="dismissed",rule="plot.intensifier"} 1.0' in (
        metrics
    )
