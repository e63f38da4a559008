"""Helpers the integration and end-to-end tests share: accounts, reading a story's stream
over the WebSocket and SSE, and the invariants every finished stream must satisfy."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema

SCHEMAS = Path(__file__).resolve().parent.parent / "docs" / "schemas"
STORY = (
    'Mara walked into the old lighthouse at dusk. "We should not be here," she said quietly. '
    "The door was opened by the wind. Tom felt very cold and he noticed the smell of salt "
    "and rust. It was the the last night of autumn, and the waves were loud against the "
    'rocks below. "Stay close," Tom whispered nervously. 🌊 Élodie waited in the village.'
)


# Every test creates its own topics on the broker, and a topic's cost (its creation, its
# groups' joins) grows with its partitions: the suite runs with fewer than the service's
# defaults (6 and 16), still more stream partitions than the gateways of any test, so
# home slices and reads elsewhere are exercised. The bench runs the defaults.
TEST_TOPIC_PARTITIONS = 3
TEST_STREAM_PARTITIONS = 4


async def wait_until(
    condition: Callable[[], object], what: str, timeout: float = 10, every: float = 0.05
) -> None:
    """Poll ``condition`` every ``every`` seconds until it is true; after ``timeout``
    seconds fail, naming ``what`` was awaited (a sleep would guess how long it takes)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(every)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def sign_up(session: aiohttp.ClientSession, base: str, username: str) -> str:
    """Register ``username`` and return an access token."""
    creds = {"username": username, "password": "correct horse battery"}
    async with session.post(f"{base}/v1/auth/register", json=creds) as res:
        assert res.status == 201, await res.text()
    async with session.post(f"{base}/v1/auth/token", json=creds) as res:
        assert res.status == 200, await res.text()
        token: str = (await res.json())["access_token"]
        return token


async def ws_story(
    session: aiohttp.ClientSession,
    base: str,
    token: str,
    submit: dict[str, Any],
    timeout: float = 60,
) -> list[dict[str, Any]]:
    """Submit over the WebSocket; every frame until ``story.completed``."""
    url = base.replace("http", "ws", 1) + "/v1/stream"
    headers = {"Authorization": f"Bearer {token}"}
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout), session.ws_connect(url, headers=headers) as ws:
        await ws.send_json({"type": "story.submit", **submit})
        async for msg in ws:
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            event = json.loads(msg.data)
            events.append(event)
            if event["type"] == "story.completed":
                break
    return events


async def sse_events(response: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
    """Parse an SSE body; yields each event's JSON with its ``id`` and ``event`` lines."""
    fields: dict[str, str] = {}
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if not line:
            if "data" in fields:
                event = json.loads(fields["data"])
                assert event["type"] == fields.get("event"), fields
                if "id" in fields:
                    assert event["cursor"] == fields["id"]
                yield event
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value


async def sse_story(
    session: aiohttp.ClientSession, base: str, token: str, body: dict[str, Any], timeout: float = 60
) -> list[dict[str, Any]]:
    """Submit with ``POST /v1/stories`` asking for SSE; every event until ``story.completed``."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    events: list[dict[str, Any]] = []
    async with (
        asyncio.timeout(timeout),
        session.post(f"{base}/v1/stories", json=body, headers=headers) as res,
    ):
        assert res.status == 200, await res.text()
        assert res.headers["Content-Type"].startswith("text/event-stream")
        async for event in sse_events(res):
            events.append(event)
            if event["type"] == "story.completed":
                break
    return events


def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / f"{name}.json").read_text())
    return loaded


def assert_valid(event: dict[str, Any], name: str) -> None:
    jsonschema.validate(event, schema(name))


def assert_story_stream(events: list[dict[str, Any]], text: str) -> dict[str, Any]:
    """The invariants of a finished, successful stream; returns ``enhancement.completed``."""
    types = [e["type"] for e in events]
    assert types[0] == "story.accepted", types
    assert types[-1] == "story.completed", types
    assert types.count("story.completed") == 1
    story_id = events[0]["story_id"]
    assert all(e["story_id"] == story_id for e in events if "story_id" in e)
    # Cursors order the events: strictly increasing offsets in one partition.
    cursors = [tuple(map(int, e["cursor"].split("-"))) for e in events[1:]]
    assert len({p for p, _ in cursors}) == 1
    assert [o for _, o in cursors] == sorted({o for _, o in cursors})
    for event in events[1:]:
        assert_valid(event, f"stream.{event['type']}")
    completed = next(e for e in events if e["type"] == "enhancement.completed")
    deltas = [e["text"] for e in events if e["type"] == "enhancement.delta"]
    assert len(deltas) > 1, "the rewrite should stream in pieces"
    assert "".join(deltas) == completed["text"]
    suggestions = [e for e in events if e["type"] == "suggestion"]
    assert suggestions, "the story has findings"
    assert completed["suggestions"] == len(suggestions)
    for s in suggestions:
        assert s["start"] is not None, s
        assert text[s["start"] : s["end"]] == s["quote"]
        assert len(text[: s["start"]].encode("utf-16-le")) // 2 == s["start_utf16"]
        assert len(text[: s["end"]].encode("utf-16-le")) // 2 == s["end_utf16"]
    assert {e["focus"] for e in events if e["type"] == "insight"} == {
        "plot",
        "character",
        "dialogue",
        "setting",
    }
    assert events[-1]["status"] == "completed"
    return completed


def record_timing(line: str) -> None:
    """A measured time, appended to ``test-artifacts/lsp.txt`` for the notes (a record,
    never an assertion: this machine is shared)."""
    folder = Path(__file__).resolve().parents[1] / "test-artifacts"
    folder.mkdir(exist_ok=True)
    with (folder / "lsp.txt").open("a") as out:
        out.write(line + "\n")
