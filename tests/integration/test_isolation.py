"""Isolation: a user reaches only their own stories. Another user's story answers exactly
as a story that does not exist (``not_found``), on every route and socket message."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from tests.integration.conftest import Service
from tests.integration.test_projector import settled
from tests.support import sign_up, sse_events, ws_story

StartService = Callable[..., Awaitable[Service]]

SHORT = 'Mara opened the door. "Hello," she said quietly. The wind was cold.'


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def http_answer(
    session: aiohttp.ClientSession, method: str, url: str, headers: dict[str, str]
) -> tuple[int, Any]:
    async with session.request(method, url, headers=headers) as res:
        body = await res.json() if res.content_type == "application/json" else await res.read()
        return res.status, body


def routes_of(
    base: str, story_id: str, token: str, cursor: str
) -> dict[str, tuple[str, str, dict[str, str]]]:
    """Every HTTP route on one story, and each way of presenting the token to it."""
    story = f"{base}/v1/stories/{story_id}"
    sse = {"Accept": "text/event-stream"}
    return {
        "get": ("GET", story, auth(token)),
        "events": ("GET", f"{story}/events", {**auth(token), **sse}),
        "events?access_token": ("GET", f"{story}/events?access_token={token}", sse),
        "events?cursor": ("GET", f"{story}/events?cursor={cursor}", {**auth(token), **sse}),
        "audio": ("GET", f"{story}/audio", auth(token)),
        "audio?access_token": ("GET", f"{story}/audio?access_token={token}", {}),
        "cancel": ("POST", f"{story}/cancel", auth(token)),
    }


async def socket_answers(
    session: aiohttp.ClientSession, base: str, token: str, frames: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The first answer to each frame, on one socket."""
    url = base.replace("http", "ws", 1) + "/v1/stream"
    answers = []
    # Generous: on Kafka a resume reads the partition's offsets from the broker first.
    async with asyncio.timeout(30), session.ws_connect(url, headers=auth(token)) as ws:
        for frame in frames:
            await ws.send_json(frame)
            answers.append(await ws.receive_json())
    return answers


def socket_frames(story_id: str, cursor: str = "0-0") -> list[dict[str, Any]]:
    return [
        {"type": "story.resume", "story_id": story_id, "request_id": "r1"},
        {"type": "story.resume", "story_id": story_id, "cursor": cursor, "request_id": "r2"},
        {"type": "story.cancel", "story_id": story_id, "request_id": "r3"},
    ]


async def test_another_users_story_is_not_found_everywhere(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service()
    ada = await sign_up(session, svc.base, "ada")
    bob = await sign_up(session, svc.base, "bob")
    events = await ws_story(session, svc.base, ada, {"text": SHORT, "idempotency_key": "k1"})
    story_id = events[0]["story_id"]
    assert events[-1]["status"] == "completed"
    await settled(session, svc, ada, story_id)
    missing = str(uuid.uuid4())
    cursor = events[1]["cursor"]

    # HTTP: bob gets for ada's story exactly what he gets for a story nobody has.
    theirs = routes_of(svc.base, story_id, bob, cursor)
    nobodys = routes_of(svc.base, missing, bob, cursor)
    for name, (method, url, headers) in theirs.items():
        status, body = await http_answer(session, method, url, headers)
        assert status == 404, (name, body)
        assert body["error"]["code"] == "not_found", (name, body)
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
        assert (status, body) == await http_answer(session, *nobodys[name][:2], nobodys[name][2])

    # The socket: the same error frame as for a missing story, and the socket stays open.
    frames = socket_frames(story_id, cursor)
    mine = await socket_answers(session, svc.base, bob, frames)
    none = await socket_answers(session, svc.base, bob, socket_frames(missing, cursor))
    for answer, reference, frame in zip(mine, none, frames, strict=True):
        assert answer["type"] == "error" and answer["code"] == "not_found", answer
        assert answer["request_id"] == frame["request_id"]
        assert answer["retryable"] is False
        unrelated = {"at", "story_id"}
        assert {k: v for k, v in answer.items() if k not in unrelated} == {
            k: v for k, v in reference.items() if k not in unrelated
        }

    # Not in bob's list, not his to page from, and his idempotency keys are his own.
    async with session.get(f"{svc.base}/v1/stories", headers=auth(bob)) as res:
        assert (await res.json())["stories"] == []
    async with session.post(
        f"{svc.base}/v1/stories",
        json={"text": SHORT, "idempotency_key": "k1", "audio": False},
        headers=auth(bob),
    ) as res:
        assert res.status == 202
        bobs_story = (await res.json())["story_id"]
    assert bobs_story != story_id
    await settled(session, svc, bob, bobs_story)

    # Ada reaches all of it, and bob's cancel changed nothing.
    for name, (method, url, headers) in routes_of(svc.base, story_id, ada, cursor).items():
        async with session.request(method, url, headers=headers) as res:
            assert res.status in (200, 202), (name, res.status, await res.text())
            if name.startswith("events"):
                replayed = [e async for e in sse_events(res)]
                assert replayed[-1]["type"] == "story.completed", name
    answers = await socket_answers(session, svc.base, ada, socket_frames(story_id)[:1])
    assert answers[0]["story_id"] == story_id and answers[0]["type"] != "error", answers
    detail = await settled(session, svc, ada, story_id)
    assert detail["status"] == "completed"
    async with session.get(f"{svc.base}/v1/stories", headers=auth(ada)) as res:
        assert [s["story_id"] for s in (await res.json())["stories"]] == [story_id]


async def test_another_user_cannot_cancel_a_running_story(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    # A slower offline rewrite, so the story is still running when bob tries.
    svc = await service(local_piece_delay_ms=20)
    ada = await sign_up(session, svc.base, "ada")
    bob = await sign_up(session, svc.base, "bob")
    url = svc.base.replace("http", "ws", 1) + "/v1/stream"
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(60), session.ws_connect(url, headers=auth(ada)) as ws:
        await ws.send_json({"type": "story.submit", "text": SHORT * 3, "audio": False})
        accepted = await ws.receive_json()
        story_id = accepted["story_id"]
        async with session.post(
            f"{svc.base}/v1/stories/{story_id}/cancel", headers=auth(bob)
        ) as res:
            assert res.status == 404
        answers = await socket_answers(session, svc.base, bob, socket_frames(story_id)[2:])
        assert answers[0]["code"] == "not_found"
        async for msg in ws:
            events.append(msg.json())
            if events[-1]["type"] == "story.completed":
                break
    assert events[-1]["status"] == "completed"
    assert any(e["type"] == "enhancement.completed" for e in events)
