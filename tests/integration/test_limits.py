"""Hard limits through the whole app: stories per user (a rate and how many run at once),
sign-in attempts, sizes, and malformed input on every route. Every refusal is the
contract's error, and leaves nothing behind: no story row, no account, no record. Every
test runs on both buses: on Kafka a refusal must not reach the real topics either."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any
from unittest.mock import ANY

import aiohttp

from amplify_stream.gateway import keys
from tests.integration.conftest import Service
from tests.support import STORY, sign_up, sse_events

StartService = Callable[..., Awaitable[Service]]
PASSWORD = "correct horse battery"
# Quick stories: the offline analyzer, no narration.
QUICK = {"text": STORY, "audio": False}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ws_url(svc: Service) -> str:
    return svc.base.replace("http", "ws", 1) + "/v1/stream"


async def user_id(session: aiohttp.ClientSession, svc: Service, token: str) -> str:
    async with session.get(f"{svc.base}/v1/auth/me", headers=auth(token)) as res:
        uid: str = (await res.json())["id"]
        return uid


async def stories_of(svc: Service, uid: str) -> int:
    return len(await svc.app[keys.STORY_STORE].list_for_user(uid, limit=100))


async def commands_published(svc: Service) -> int:
    """The story commands a worker (read_committed) sees: a transaction's commit marker
    takes an offset too, so the end offsets overcount."""
    bus, topic = svc.app[keys.BUS], svc.topics.stories
    found = 0
    for partition, end in (await bus.end_offsets(topic)).items():
        found += len(await bus.read_range(topic, partition, 0, end, isolation="read_committed"))
    return found


async def post_story(
    session: aiohttp.ClientSession, svc: Service, token: str, body: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any], dict[str, str]]:
    async with session.post(
        f"{svc.base}/v1/stories", json=body or QUICK, headers=auth(token)
    ) as res:
        return res.status, await res.json(), dict(res.headers)


def assert_rate_limited(status: int, body: dict[str, Any], headers: dict[str, str]) -> int:
    assert status == 429, body
    assert body["error"]["code"] == "rate_limited"
    assert body["error"]["retryable"] is True
    retry_after = int(headers["Retry-After"])
    assert 1 <= retry_after <= 60
    return retry_after


async def ws_submit_refused(
    session: aiohttp.ClientSession, svc: Service, token: str
) -> dict[str, Any]:
    """A submit on the socket is refused with ``rate_limited``; the socket stays open."""
    async with session.ws_connect(ws_url(svc), headers=auth(token)) as ws:
        await ws.send_json({"type": "story.submit", "request_id": "again", **QUICK})
        error: dict[str, Any] = await ws.receive_json(timeout=10)
        await ws.send_json({"type": "ping"})
        assert (await ws.receive_json(timeout=10))["type"] == "pong"
    assert error["type"] == "error" and error["code"] == "rate_limited", error
    assert error["retryable"] is True and error["request_id"] == "again"
    assert 1 <= error["retry_after"] <= 60
    return error


async def wait_completed(
    session: aiohttp.ClientSession, svc: Service, token: str, story_id: str
) -> None:
    url = f"{svc.base}/v1/stories/{story_id}/events"
    async with asyncio.timeout(60), session.get(url, headers=auth(token)) as res:
        assert res.status == 200
        async for event in sse_events(res):
            if event["type"] == "story.completed":
                return


# ---------------------------------------------------------------- stories per user


async def test_submissions_per_minute(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service(submissions_per_minute=3, max_running_per_user=100)
    token = await sign_up(session, svc.base, "ada")
    uid = await user_id(session, svc, token)
    for _ in range(3):
        status, body, _headers = await post_story(session, svc, token)
        assert status == 202, body
    assert_rate_limited(*await post_story(session, svc, token))
    await ws_submit_refused(session, svc, token)
    assert await stories_of(svc, uid) == 3
    assert await commands_published(svc) == 3
    # Per user: another writer is not held back.
    other = await sign_up(session, svc.base, "grace")
    assert (await post_story(session, svc, other))[0] == 202


async def test_idempotent_retry_is_not_counted(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service(submissions_per_minute=1)
    token = await sign_up(session, svc.base, "tony")
    body = {**QUICK, "idempotency_key": "draft-1"}
    first = await post_story(session, svc, token, body)
    again = await post_story(session, svc, token, body)
    assert first[0] == again[0] == 202
    assert first[1]["story_id"] == again[1]["story_id"]
    assert_rate_limited(*await post_story(session, svc, token))


async def test_stories_running_at_once(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    # Slow stories: the two must still be running when the third comes.
    svc = await service(max_running_per_user=2, local_piece_delay_ms=200)
    token = await sign_up(session, svc.base, "linus")
    uid = await user_id(session, svc, token)
    for _ in range(2):
        assert (await post_story(session, svc, token))[0] == 202
    status, body, headers = await post_story(session, svc, token)
    assert_rate_limited(status, body, headers)
    assert "running" in body["error"]["message"]
    await ws_submit_refused(session, svc, token)
    assert await stories_of(svc, uid) == 2
    assert await commands_published(svc) == 2


async def test_running_limit_frees_when_stories_complete(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    # The store counts a story as running until the projector folds its story.completed.
    svc = await service(max_running_per_user=2)
    token = await sign_up(session, svc.base, "barbara")
    ids = [(await post_story(session, svc, token))[1]["story_id"] for _ in range(2)]
    assert (await post_story(session, svc, token))[0] == 429
    for story_id in ids:
        await wait_completed(session, svc, token, story_id)
    # The projector folds the outcome a moment after the client saw story.completed (on
    # Kafka, once the outcome's transaction commits and the projector's consumer reads it).
    async with asyncio.timeout(30):
        while True:
            result = await post_story(session, svc, token)
            if result[0] != 429:
                break
            await asyncio.sleep(0.1)
    assert result[0] == 202, result


# ---------------------------------------------------------------- sign-in attempts


async def login(
    session: aiohttp.ClientSession, svc: Service, username: str, password: str = PASSWORD
) -> tuple[int, dict[str, Any], dict[str, str]]:
    creds = {"username": username, "password": password}
    async with session.post(f"{svc.base}/v1/auth/token", json=creds) as res:
        return res.status, await res.json(), dict(res.headers)


async def register(
    session: aiohttp.ClientSession, svc: Service, username: str
) -> tuple[int, dict[str, Any], dict[str, str]]:
    creds = {"username": username, "password": PASSWORD}
    async with session.post(f"{svc.base}/v1/auth/register", json=creds) as res:
        return res.status, await res.json(), dict(res.headers)


async def test_login_attempts_per_username(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service(
        login_attempts_per_minute_per_user=3, login_attempts_per_minute_per_address=100
    )
    assert (await register(session, svc, "ada"))[0] == 201
    for _ in range(3):
        assert (await login(session, svc, "ada", "wrong password"))[0] == 401
    # The right password now is refused too: the guesser may not learn it is right.
    assert_rate_limited(*await login(session, svc, "ada"))
    assert_rate_limited(*await login(session, svc, "ADA"))
    # Other accounts are not held back.
    assert (await register(session, svc, "grace"))[0] == 201
    assert (await login(session, svc, "grace"))[0] == 200


async def test_login_attempts_per_address_and_registrations(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service(
        login_attempts_per_minute_per_user=100, login_attempts_per_minute_per_address=4
    )
    assert (await register(session, svc, "ada"))[0] == 201
    status, body, _headers = await login(session, svc, "ada")
    assert status == 200
    token = body["access_token"]
    # A success resets nothing; failures count.
    assert (await login(session, svc, "ada"))[0] == 200
    assert (await login(session, svc, "nobody", "wrong password"))[0] == 401
    assert_rate_limited(*await login(session, svc, "ada"))
    assert_rate_limited(*await register(session, svc, "grace"))
    assert await svc.app[keys.USERS].by_username("grace") is None
    # Only sign-in is limited: the token in hand still works.
    async with session.get(f"{svc.base}/v1/auth/me", headers=auth(token)) as res:
        assert res.status == 200


# ---------------------------------------------------------------- sizes


async def test_websocket_frame_over_the_limit_closes_with_1009(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service(max_ws_frame_bytes=64 * 1024)
    token = await sign_up(session, svc.base, "edsger")
    uid = await user_id(session, svc, token)
    async with session.ws_connect(ws_url(svc), headers=auth(token)) as ws:
        # Just under the frame limit: an answer, and the socket stays open.
        frame = json.dumps({"type": "story.submit", "text": "a" * (64 * 1024 - 100)})
        await ws.send_str(frame)
        assert (await ws.receive_json(timeout=10))["code"] == "story_too_large"
        await ws.send_str(json.dumps({"type": "story.submit", "text": "a" * 64 * 1024}))
        msg = await ws.receive(timeout=10)
        assert msg.type == aiohttp.WSMsgType.CLOSE, msg
        assert ws.close_code == 1009
    async with session.ws_connect(ws_url(svc), headers=auth(token)) as ws:
        await ws.send_bytes(b"\0" * (64 * 1024 + 1))
        assert (await ws.receive(timeout=10)).type == aiohttp.WSMsgType.CLOSE
        assert ws.close_code == 1009
    assert await stories_of(svc, uid) == 0


# story.submit fields (besides ``type``) and the field its ``invalid_message`` names: the rules
# of POST /v1/stories, which answers 422 invalid_story to the same bodies.
BAD_SUBMITS: list[tuple[dict[str, Any], str]] = [
    ({"text": ""}, "text"),
    ({"text": " \n\t "}, "text"),
    ({"text": 42}, "text"),
    ({"text": "nul\x00byte"}, "text"),
    ({"title": "no text"}, "text"),
    ({"text": STORY, "title": "t" * 201}, "title"),
    ({"text": STORY, "title": 7}, "title"),
    ({"text": STORY, "title": "nul\x00"}, "title"),
    ({"text": STORY, "focus": ["pacing"]}, "focus"),
    ({"text": STORY, "focus": []}, "focus"),
    ({"text": STORY, "focus": "plot"}, "focus"),
    ({"text": STORY, "focus": ["plot", "plot"]}, "focus"),
    ({"text": STORY, "rewrite": "yes"}, "rewrite"),
    ({"text": STORY, "rewrite": None}, "rewrite"),
    ({"text": STORY, "audio": 1}, "audio"),
    ({"text": STORY, "voice": ["en-us"]}, "voice"),
    ({"text": STORY, "voice": "v" * 101}, "voice"),
    ({"text": STORY, "voice": "nul\x00"}, "voice"),
    ({"text": STORY, "idempotency_key": "k" * 201}, "idempotency_key"),
    ({"text": STORY, "idempotency_key": 7}, "idempotency_key"),
    ({"text": STORY, "idempotency_key": "nul\x00"}, "idempotency_key"),
    ({"text": STORY, "colour": "blue"}, "colour"),
]

# Frames of the other messages and the field named: refused before any story is looked up.
BAD_FRAMES: list[tuple[dict[str, Any], str]] = [
    ({}, "type"),
    ({"type": "story.finish"}, "type"),
    ({"type": 5}, "type"),
    ({"type": "story.resume"}, "story_id"),
    ({"type": "story.resume", "story_id": 5}, "story_id"),
    ({"type": "story.resume", "story_id": "s" * 101}, "story_id"),
    ({"type": "story.resume", "story_id": "s-1", "cursor": 5}, "cursor"),
    ({"type": "story.resume", "story_id": "s-1", "cursor": "0-" + "9" * 100}, "cursor"),
    ({"type": "story.resume", "story_id": "s-1", "after": "0-1"}, "after"),
    ({"type": "story.cancel"}, "story_id"),
    ({"type": "story.cancel", "story_id": ["s-1"]}, "story_id"),
    ({"type": "story.cancel", "story_id": "s-1", "cursor": "0-1"}, "cursor"),
    ({"type": "ping", "echo": True}, "echo"),
]


def assert_names(reply: dict[str, Any], field: str, request_id: str | None, frame: Any) -> None:
    """``reply`` is the ``invalid_message`` of ``frame``, its message starts with the field
    (``focus: ...``, ``focus[0]: ...``), and it echoes the frame's valid ``request_id``."""
    assert reply["type"] == "error" and reply["code"] == "invalid_message", (frame, reply)
    assert re.match(rf"{re.escape(field)}[:\[ ]", reply["message"]), (frame, reply)
    assert reply.get("request_id") == request_id, (frame, reply)
    assert reply["retryable"] is False, (frame, reply)


async def test_bad_stories_on_the_socket(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service()
    token = await sign_up(session, svc.base, "margaret")
    uid = await user_id(session, svc, token)
    async with session.ws_connect(ws_url(svc), headers=auth(token)) as ws:
        for n, (fields, field) in enumerate(BAD_SUBMITS):
            frame = {"type": "story.submit", "request_id": f"r{n}", **fields}
            await ws.send_json(frame)
            assert_names(await ws.receive_json(timeout=30), field, f"r{n}", frame)
        # Its own code in the contract, not an invalid field.
        await ws.send_json({"type": "story.submit", "request_id": "big", "text": "x" * 50_001})
        reply = await ws.receive_json(timeout=30)
        assert (reply["code"], reply["request_id"]) == ("story_too_large", "big"), reply
        # Every invalid field is named, in one answer.
        frame = {"type": "story.submit", "request_id": "two", "text": 42, "colour": "blue"}
        await ws.send_json(frame)
        reply = await ws.receive_json(timeout=30)
        assert_names(reply, "text", "two", frame)
        assert "; colour: " in reply["message"], reply
        # An invalid request_id is named and not echoed back.
        for bad_id in ("r" * 201, 7):
            frame = {"type": "story.submit", "request_id": bad_id, "text": STORY}
            await ws.send_json(frame)
            assert_names(await ws.receive_json(timeout=30), "request_id", None, frame)
        await ws.send_json({"type": "ping", "request_id": "r" * 201})
        assert "request_id" not in await ws.receive_json(timeout=30)
        # Still open, and nothing was accepted.
        await ws.send_json({"type": "ping", "request_id": "last"})
        assert (await ws.receive_json(timeout=30))["type"] == "pong"
    assert await stories_of(svc, uid) == 0
    assert await commands_published(svc) == 0


async def test_bad_commands_on_the_socket(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service()
    token = await sign_up(session, svc.base, "frances")
    async with session.ws_connect(ws_url(svc), headers=auth(token)) as ws:
        for n, (fields, field) in enumerate(BAD_FRAMES):
            frame = {**fields, "request_id": f"c{n}"}
            await ws.send_json(frame)
            assert_names(await ws.receive_json(timeout=30), field, f"c{n}", frame)
        # Not a message at all: no field to name, still invalid_message.
        for raw in ("[]", '"ping"', "null", "{not json"):
            await ws.send_str(raw)
            reply = await ws.receive_json(timeout=30)
            assert (reply["type"], reply["code"]) == ("error", "invalid_message"), (raw, reply)
        await ws.send_json({"type": "ping", "request_id": "last"})
        assert await ws.receive_json(timeout=30) == {
            "type": "pong",
            "request_id": "last",
            "at": ANY,
        }
    assert await commands_published(svc) == 0


# ---------------------------------------------------------------- malformed HTTP


def _story_cases() -> list[tuple[str, Any, int, str]]:
    """(content type, body, status, code) for ``POST /v1/stories``; a dict body is JSON."""
    json_type = "application/json"
    bad_fields: list[dict[str, Any]] = [
        {"text": STORY, "title": "t" * 201},
        {"text": STORY, "title": 7},
        {"text": STORY, "focus": ["pacing"]},
        {"text": STORY, "focus": []},
        {"text": STORY, "focus": "plot"},
        {"text": STORY, "focus": ["plot", "plot"]},
        {"text": STORY, "rewrite": "yes"},
        {"text": STORY, "audio": 1},
        {"text": STORY, "voice": ["en-us"]},
        {"text": STORY, "voice": "v" * 101},
        {"text": STORY, "request_id": "r" * 201},
        {"text": STORY, "idempotency_key": "k" * 201},
        {"text": STORY, "colour": "blue"},
        {"text": STORY, "type": "story.submit"},
        {"text": 42},
        {"text": ""},
        {"text": " \n "},
        {"text": "nul\x00byte"},
        {"title": "no text"},
    ]
    return [
        *[(json_type, fields, 422, "invalid_story") for fields in bad_fields],
        (json_type, {"text": "x" * 50_001}, 413, "story_too_large"),
        (json_type, {"text": "x" * 400_000}, 413, "story_too_large"),
        (json_type, b"", 400, "invalid_message"),
        (json_type, b"{not json", 400, "invalid_message"),
        (json_type, b'{"text": "\xff\xfe"}', 400, "invalid_message"),
        (json_type, b"[]", 422, "invalid_story"),
        (json_type, b"null", 422, "invalid_story"),
        (json_type, b'"a story"', 422, "invalid_story"),
        ("text/plain", b'{"text": "hi"}', 415, "unsupported_media_type"),
        ("application/x-www-form-urlencoded", b"text=hi", 415, "unsupported_media_type"),
        ("application/octet-stream", b"\0\1\2", 415, "unsupported_media_type"),
    ]


async def send(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    content_type: str | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """The status and JSON error of a request the service must refuse."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    sent = dict(headers or {})
    if content_type is not None:
        sent["Content-Type"] = content_type
    async with session.request(method, url, data=data, headers=sent) as res:
        assert res.content_type == "application/json", (res.status, await res.text())
        answer: dict[str, Any] = await res.json()
        return res.status, answer


async def test_malformed_story_bodies(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service()
    token = await sign_up(session, svc.base, "grace")
    uid = await user_id(session, svc, token)
    for content_type, body, status, code in _story_cases():
        got = await send(session, "POST", f"{svc.base}/v1/stories", content_type, body, auth(token))
        assert (got[0], got[1]["error"]["code"]) == (status, code), (content_type, body, got)
    assert await stories_of(svc, uid) == 0
    assert await commands_published(svc) == 0


async def test_malformed_account_bodies(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service()
    json_type = "application/json"
    huge = {"username": "ada", "password": "p" * 400_000}
    for path, refused in [("register", "invalid_account"), ("token", "unauthorized")]:
        status = 422 if refused == "invalid_account" else 401
        cases: list[tuple[str, Any, int, str]] = [
            (json_type, b"", 400, "invalid_message"),
            (json_type, b"{nope", 400, "invalid_message"),
            (json_type, b"[]", status, refused),
            (json_type, {"username": 5, "password": PASSWORD}, status, refused),
            (json_type, {"username": "a/b", "password": PASSWORD}, status, refused),
            (json_type, {"username": "ada", "password": "short"}, status, refused),
            (json_type, {"username": "ada", "password": "nul\x00password"}, status, refused),
            (json_type, {"username": "ada"}, status, refused),
            (json_type, huge, 413, "story_too_large"),
            ("text/plain", b"username=ada", 415, "unsupported_media_type"),
        ]
        for content_type, body, want_status, code in cases:
            got = await send(session, "POST", f"{svc.base}/v1/auth/{path}", content_type, body)
            assert (got[0], got[1]["error"]["code"]) == (want_status, code), (path, body, got)
    assert await svc.app[keys.USERS].by_username("ada") is None


async def test_bad_paths_and_query_params(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service()
    token = await sign_up(session, svc.base, "alan")
    status, body, _headers = await post_story(session, svc, token)
    assert status == 202
    story = body["story_id"]
    await wait_completed(session, svc, token, story)
    record = await svc.app[keys.STORY_STORE].get_for_user(story, await user_id(session, svc, token))
    beyond = f"{record.stream_partition}-{10**12}"
    other_partition = f"{record.stream_partition + 1}-0"
    base = f"{svc.base}/v1/stories"
    h = auth(token)
    cases: list[tuple[str, str, dict[str, str], int, str]] = [
        ("GET", f"{base}/{story}/events?cursor=garbage", h, 400, "invalid_message"),
        ("GET", f"{base}/{story}/events?cursor=-1-5", h, 400, "invalid_message"),
        ("GET", f"{base}/{story}/events?cursor={beyond}", h, 400, "invalid_message"),
        ("GET", f"{base}/{story}/events?cursor={other_partition}", h, 400, "invalid_message"),
        ("GET", f"{base}/{story}/events?cursor=0-" + "9" * 5000, h, 400, "invalid_message"),
        ("GET", f"{base}/{story}/events", {"Last-Event-ID": "x-y", **h}, 400, "invalid_message"),
        ("GET", f"{base}/{story}/events?access_token=garbage", {}, 401, "unauthorized"),
        ("GET", f"{base}/{story}/audio?access_token=", {}, 401, "unauthorized"),
        ("GET", f"{base}/{'x' * 5000}/events", h, 404, "not_found"),
        ("GET", f"{base}/{'x' * 5000}/audio", h, 404, "not_found"),
        ("POST", f"{base}/{'x' * 5000}/cancel", h, 404, "not_found"),
        ("POST", f"{base}/no-such-story/cancel", h, 404, "not_found"),
        ("GET", f"{svc.base}/v1/nothing-here", h, 404, "not_found"),
        ("DELETE", f"{base}/{story}/events", h, 405, "method_not_allowed"),
    ]
    for method, url, headers, want, code in cases:
        got = await send(session, method, url, headers=headers)
        assert (got[0], got[1]["error"]["code"]) == (want, code), (method, url[:120], got)
    # The same cursors on the socket: invalid_message naming the cursor, the socket open.
    async with session.ws_connect(ws_url(svc), headers=h) as ws:
        for n, cursor in enumerate(["garbage", "-1-5", beyond, other_partition]):
            frame = {"type": "story.resume", "story_id": story, "cursor": cursor}
            await ws.send_json({**frame, "request_id": f"c{n}"})
            assert_names(await ws.receive_json(timeout=30), "cursor", f"c{n}", frame)
    # The list route's paging parameters: never a 500, always the JSON error envelope.
    for query in ("limit=abc", "limit=-1", "limit=99999999999999999999", "before=" + "x" * 5000):
        async with session.get(f"{base}?{query}", headers=h) as res:
            assert res.status < 500, (query, res.status)
            if res.status >= 400:
                assert "code" in (await res.json())["error"], query
