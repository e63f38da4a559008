"""The wire JSON carries docs/protocol.md's names: real stories through the whole service, on
both buses, read as a client or an analytics consumer reads them.

The tables below are transcribed by hand from docs/protocol.md (sections 1-4 and 6), never
derived from the pydantic models: the schema-based contract tests validate events against
schemas generated from those same models, so a renamed field would pass them. Here it does
not. A field marked ``?`` may be absent (or null); when it has a value, it has the type. The
table language is tests/wire_check.py's.

Stories: one with rewrite and audio (every event of a success, HTTP answers, record
headers), one whose provider fails (``enhancement.failed``), one whose voice fails
(``narration.failed``, ``tts_unavailable``), and one whose enhancement is run again
(``enhancement.reset``: a bus outage on the memory bus, a restart of the service on Kafka).

Live documents (section 6): the client frames, built from the tables, are what the socket's
parser accepts; a document's commands go through its owner, and its records on the
stream, outcome and snapshot topics are read back (the socket does not serve documents
yet, so the stream topic, "the same JSON" less the cursor, stands for it).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from pydantic import ValidationError

from amplify_stream.bus.base import Isolation, Record
from amplify_stream.events import (
    DocChange,
    DocumentDeleted,
    DocumentEdited,
    DocumentOpenRequested,
    client_message_adapter,
    encode,
    headers_for,
)
from amplify_stream.fakes.edge_tts import FakeEdgeConfig, serve_fake_edge_tts
from amplify_stream.fakes.gemini import FakeGeminiServer
from amplify_stream.gateway import keys
from tests.integration.conftest import Service
from tests.integration.test_bus_outage import cut_for, long_story, story_with_outage
from tests.integration.test_pipeline import outcomes_of
from tests.integration.test_pipeline_gemini import gemini_service
from tests.support import STORY, sign_up, sse_events
from tests.wire_check import Spec, problems_of

StartService = Callable[..., Awaitable[Service]]
StartGemini = Callable[..., Awaitable[FakeGeminiServer]]


def merged(*tables: Mapping[str, Spec]) -> dict[str, Spec]:
    """One table of the fields of several (a later table's entry wins)."""
    return {name: spec for table in tables for name, spec in table.items()}


# ---------------------------------------------------------------- docs/protocol.md, by hand

FOCUS = "'plot'|'character'|'dialogue'|'setting'"
STATUS = "'completed'|'failed'|'cancelled'"
ERROR_CODES = (  # section 1
    "invalid_message",
    "invalid_story",
    "story_too_large",
    "unauthorized",
    "not_found",
    "rate_limited",
    "cursor_expired",
    "provider_unavailable",
    "provider_error",
    "tts_unavailable",
    "cancelled",
    "internal",
    "version_conflict",
)
ERROR_INFO = {"code": "string", "message": "string"}  # section 4's `error: {code, message}`
USAGE = {"input_tokens": "integer", "output_tokens": "integer"}
SUGGESTION: dict[str, Spec] = {
    "id": "string",
    "focus": FOCUS,
    "quote": "string",
    # "null when the quote was not found"
    "start": "integer|null",
    "end": "integer|null",
    "start_utf16": "integer|null",
    "end_utf16": "integer|null",
    "message": "string",
    "replacement?": "string",
}
INSIGHT: dict[str, Spec] = {"focus": FOCUS, "summary": "string", "metrics?": {"*": "number"}}

# Section 1: "Every story event carries `type`, `story_id`, `cursor`, `at`."
STORY_EVENT = {"type": "string", "story_id": "string", "cursor": "string", "at": "timestamp"}
SERVER_EVENTS: dict[str, Mapping[str, Spec]] = {
    "story.accepted": {"request_id?": "string", "status": "'queued'", "cursor": "string|null"},
    "enhancement.started": {"provider": "string", "model": "string", "attempt": "integer"},
    "enhancement.delta": {"text": "string", "attempt": "integer"},
    "enhancement.reset": {"attempt": "integer", "reason": "string"},
    "suggestion": SUGGESTION,
    "insight": INSIGHT,
    "enhancement.completed": {"text": "string", "suggestions": "integer", "usage": USAGE},
    "audio.started": {"format": "'audio/mpeg'", "voice": "string", "provider": "string"},
    "audio.chunk": {"index": "integer", "data": "base64"},
    "audio.word": {
        "text": "string",
        "offset_ms": "number",
        "duration_ms": "number",
        "start?": "integer",
        "end?": "integer",
    },
    "audio.completed": {
        "duration_ms": "number",
        "bytes": "integer",
        "sha256": "string",
        "url": "string",
    },
    "story.completed": {"status": STATUS, "error?": ERROR_INFO},
    "error": {
        "code": "|".join(f"'{code}'" for code in ERROR_CODES),
        "message": "string",
        "retryable": "boolean",
        "request_id?": "string",
        "story_id?": "string",
        # Section 6: "`error` `version_conflict` with `doc_id` and the current `version`".
        "doc_id?": "string",
        "version?": "integer",
    },
    "pong": {"request_id?": "string"},
}
NOT_STORY_EVENTS = {"pong"}  # and an `error` answering a frame rather than on a story's stream

# Section 4: every topic's value, and every record's headers.
TOPIC_VALUE = {"type": "string", "story_id": "string", "user_id": "string", "at": "timestamp"}
HEADERS = {"content-type": "application/json", "schema-version": "1"}  # and event-type = type
COMMANDS: dict[str, Mapping[str, Spec]] = {
    # "the story and its options": story.submit's fields
    "story.submitted": {
        "text": "string",
        "title?": "string",
        "focus?": [FOCUS],
        "rewrite?": "boolean",
        "audio?": "boolean",
        "voice?": "string",
        "idempotency_key?": "string",
        "request_id?": "string",
    },
    "story.cancelled": {},
}
OUTCOME = merged(TOPIC_VALUE, {"attempt": "integer"})  # "each also carrying `attempt`"
OUTCOMES: dict[str, Mapping[str, Spec]] = {
    "enhancement.completed": {
        "provider": "string",
        "model": "string",
        "input_chars": "integer",
        "text": "string",
        "suggestions": [SUGGESTION],
        "insights": [INSIGHT],
        "usage": USAGE,
        "timings": {
            "queue_ms": "number",
            "first_token_ms": "number",
            "total_ms": "number",
            "first_suggestion_ms?": "number",  # an addition: none without a suggestion
        },
    },
    "enhancement.failed": {"error": ERROR_INFO, "attempts": "integer"},
    "narration.completed": {
        "provider": "string",
        "voice": "string",
        "format": "'audio/mpeg'",
        "duration_ms": "number",
        "bytes": "integer",
        "sha256": "string",
        "chunks": "integer",
        "words": "integer",
        "timings": {"first_audio_ms": "number", "total_ms": "number"},
    },
    "narration.failed": {"error": ERROR_INFO},
    "story.completed": {"status": STATUS, "timings": {"total_ms": "number"}},
}

# Section 6: live documents. Client to server (the type's value is the table's own key).
DOC_CHANGE = {"start_utf16": "integer", "end_utf16": "integer", "text": "string"}
DOC_FRAMES: dict[str, Mapping[str, Spec]] = {
    "doc.open": {
        "request_id?": "string",
        "doc_id?": "string",
        "text?": "string",
        "title?": "string",
        "focus?": [FOCUS],
    },
    "doc.edit": {"doc_id": "string", "version": "integer", "changes": [DOC_CHANGE]},
    "doc.close": {"doc_id": "string"},
}
# "Server to client (each with `type`, `doc_id`, `version`, `at`)".
DOC_EVENT = {"type": "string", "doc_id": "string", "version": "integer", "at": "timestamp"}
DOC_EVENTS: dict[str, Mapping[str, Spec]] = {
    # `title` is named without `?`: there, null when the document has none.
    "doc.opened": {
        "request_id?": "string",
        "text": "string",
        "title": "string|null",
        "focus": [FOCUS],
    },
    "doc.ack": {"request_id?": "string"},  # request_id: an addition
    "doc.suggestion": {
        "id": "string",
        "focus": FOCUS,
        "quote": "string",
        # "spans in the text of `version`": never null here, unlike a story's.
        "start": "integer",
        "end": "integer",
        "start_utf16": "integer",
        "end_utf16": "integer",
        "message": "string",
        "replacement?": "string",
    },
    "doc.retracted": {"ids": ["string"]},
    "doc.insight": INSIGHT,
    "doc.analyzed": {"suggestions": "integer", "paragraphs": "integer", "reanalyzed": "integer"},
}
VERSION_CONFLICT = {"doc_id": "string", "version": "integer"}
# "a `document.analyzed` outcome on `amplify.outcomes.v1`" (no story_id, no attempt).
DOCUMENT_ANALYZED: dict[str, Spec] = {
    "type": "'document.analyzed'",
    "doc_id": "string",
    "user_id": "string",
    "at": "timestamp",
    "version": "integer",
    "provider": "string",
    "suggestions": {"*": "integer"},  # "count per focus"
    "paragraphs": "integer",
    "reanalyzed": "integer",
    "timings": {"idle_ms": "number", "analysis_ms": "number"},
}
# Additions (docs/protocol.md section 6): the commands on `amplify.documents.v1` and the
# snapshots on `amplify.document-snapshots.v1`, key doc_id both.
DOC_TOPIC_VALUE = {"type": "string", "doc_id": "string", "user_id": "string", "at": "timestamp"}
DOC_COMMANDS: dict[str, Mapping[str, Spec]] = {
    "document.open": {
        "reply_to": "string",
        "request_id?": "string",
        "create": "boolean",
        "text": "string",
        "title?": "string",
        "focus?": [FOCUS],
    },
    "document.edited": {
        "reply_to": "string",
        "request_id?": "string",
        "version": "integer",
        "changes": [DOC_CHANGE],
    },
    "document.deleted": {},
}
DOC_SNAPSHOT: dict[str, Spec] = {
    "created_at": "timestamp",
    "offset": "integer",
    "title": "string|null",
    "focus": [FOCUS],
    "text": "string",
    "version": "integer",
    "suggestions": [
        {
            "id": "string",
            "focus": FOCUS,
            "quote": "string",
            "message": "string",
            "replacement?": "string",
            "start_utf16": "integer",
            "end_utf16": "integer",
        }
    ],
    "deleted": "boolean",
}
REPLY_TO = "reply-to"

# Sections 2 and 3.
USER = {"id": "string", "username": "string"}
TOKEN = {"access_token": "string", "token_type": "'bearer'", "expires_in": "integer"}
STORY_QUEUED = {
    "story_id": "string",
    "status": "'queued'",
    "links": {"self": "string", "events": "string", "audio": "string"},
}
STORY_DETAIL = {
    "story_id": "string",
    "status": STATUS,  # read once the story has ended
    "title": "string|null",  # null when the submit had none
    "created_at": "timestamp",
    "completed_at?": "timestamp",
    "text": "string",
    "enhanced_text?": "string",
    "suggestions": [SUGGESTION],
    "insights": [INSIGHT],
    "audio?": {
        "format": "'audio/mpeg'",
        "duration_ms": "number",
        "bytes": "integer",
        "sha256": "string",
        "url": "string",
    },
    "error?": ERROR_INFO,
}
HTTP_ERROR = {"error": {"code": "string", "message": "string", "details?": "any"}}
HEALTH = {"status": "'ok'"}
READINESS = {"status": "string", "checks": {"bus": "any", "store": "any"}}


# ---------------------------------------------------------------- checks


class Wire:
    """What one test read off the wire: its contract problems and the types it saw."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        # "<where>:<type>"; where: socket, sse, analytics (outcomes_of), or a topic's name.
        self.seen: set[str] = set()

    def check(self, value: Any, spec: Spec, where: str) -> None:
        self.problems += problems_of(value, spec, where)

    def event(self, event: dict[str, Any], where: str, *, on_story: bool = True) -> None:
        """A server-to-client event (socket or SSE); ``on_story``: of a story's stream."""
        kind = event.get("type")
        self.seen.add(f"{where}:{kind}")
        common: Mapping[str, Spec] = (
            STORY_EVENT if on_story and kind not in NOT_STORY_EVENTS else {}
        )
        # An addition of the service (docs/protocol.md allows them): the common fields only.
        self.check(event, merged(common, SERVER_EVENTS.get(str(kind), {})), f"{where} {kind}")

    def assert_clean(self, *, saw: set[str]) -> None:
        problems = list(dict.fromkeys(self.problems))
        shown = "\n".join(problems[:30]) + (
            f"\n... {len(problems) - 30} more" * (len(problems) > 30)
        )
        assert not problems, shown
        assert saw <= self.seen, f"never saw {sorted(saw - self.seen)}"


async def check_topics(wire: Wire, svc: Service, story_id: str) -> None:
    """Section 4: the story's records on the command, stream and outcome topics, as a
    read_committed consumer of each sees them (call once the story's outcomes are in)."""
    bus, prefix = svc.app[keys.BUS], svc.settings.topic_prefix
    tables: dict[str, tuple[Mapping[str, Spec], Mapping[str, Mapping[str, Spec]]]] = {
        "stories": (TOPIC_VALUE, COMMANDS),
        # Section 1's JSON; the cursor is the record's own position, not in its value.
        "stream": (
            TOPIC_VALUE | {k: v for k, v in STORY_EVENT.items() if k != "cursor"},
            {k: {f: s for f, s in v.items() if f != "cursor"} for k, v in SERVER_EVENTS.items()},
        ),
        "outcomes": (OUTCOME, OUTCOMES),
    }
    for name, (common, by_type) in tables.items():
        topic = f"{prefix}.{name}.v1"
        partition = bus.partition_for(topic, story_id, len(await bus.end_offsets(topic)))
        begin = (await bus.begin_offsets(topic))[partition]
        end = (await bus.end_offsets(topic))[partition]
        records = await bus.read_range(topic, partition, begin, end, isolation="read_committed")
        for record in (r for r in records if r.key == story_id):
            value = json.loads(record.value)
            where = f"{name}@{record.cursor} {value.get('type')}"
            wire.seen.add(f"{name}:{value.get('type')}")
            headers = {key: raw.decode() for key, raw in record.headers}
            wanted = HEADERS | {"event-type": str(value.get("type"))}
            wire.problems += [
                f"{where}: header {key}={headers.get(key)!r}, not {expected!r}"
                for key, expected in wanted.items()
                if headers.get(key) != expected
            ]
            spec = merged(common, by_type.get(str(value.get("type")), {}))
            wire.check(value, spec, where)


async def check_outcomes(wire: Wire, svc: Service, story_id: str) -> list[dict[str, Any]]:
    """Section 4's outcomes, read as analytics reads them; then every topic's records."""
    outcomes = await outcomes_of(svc, story_id)
    for outcome in outcomes:
        kind = str(outcome.get("type"))
        wire.seen.add(f"analytics:{kind}")
        wire.check(outcome, merged(OUTCOME, OUTCOMES.get(kind, {})), f"analytics {kind}")
    await check_topics(wire, svc, story_id)
    return outcomes


async def http_json(
    wire: Wire,
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    status: int,
    spec: Spec,
    **kwargs: Any,
) -> dict[str, Any]:
    async with session.request(method, url, **kwargs) as res:
        body: dict[str, Any] = await res.json()
        assert res.status == status, (method, url, res.status, body)
    wire.check(body, spec, f"{method} {url.split('/', 3)[-1]} {status}")
    return body


async def ended(
    wire: Wire, session: aiohttp.ClientSession, svc: Service, token: str, story_id: str
) -> dict[str, Any]:
    """``GET /v1/stories/{id}`` once the store has the story's end."""
    url, auth = f"{svc.base}/v1/stories/{story_id}", {"Authorization": f"Bearer {token}"}
    async with asyncio.timeout(30):
        while True:
            async with session.get(url, headers=auth) as res:
                body: dict[str, Any] = await res.json()
            if body.get("status") != "queued":
                wire.check(body, STORY_DETAIL, f"GET /v1/stories/{{id}} ({body.get('status')})")
                return body
            await asyncio.sleep(0.05)


@asynccontextmanager
async def socket(
    session: aiohttp.ClientSession, svc: Service, token: str
) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    url = svc.base.replace("http", "ws", 1) + "/v1/stream"
    async with session.ws_connect(url, headers={"Authorization": f"Bearer {token}"}) as ws:
        yield ws


async def until_completed(ws: aiohttp.ClientWebSocketResponse) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(60):
        while not events or events[-1].get("type") != "story.completed":
            events.append(await ws.receive_json())
    return events


async def socket_story(
    wire: Wire, session: aiohttp.ClientSession, svc: Service, token: str, body: dict[str, Any]
) -> list[dict[str, Any]]:
    """Submit over the socket; every event until ``story.completed``, each checked."""
    async with socket(session, svc, token) as ws:
        await ws.send_json({"type": "story.submit", **body})
        events = await until_completed(ws)
    for event in events:
        wire.event(event, "socket")
    return events


# ---------------------------------------------------------------- stories


async def test_a_story_with_rewrite_and_audio(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service()
    wire = Wire()
    base, creds = svc.base, {"username": "ada", "password": "correct horse battery"}
    await http_json(wire, session, "POST", f"{base}/v1/auth/register", 201, USER, json=creds)
    grant = await http_json(wire, session, "POST", f"{base}/v1/auth/token", 200, TOKEN, json=creds)
    token = grant["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    await http_json(wire, session, "GET", f"{base}/v1/auth/me", 200, USER, headers=auth)

    async with socket(session, svc, token) as ws:
        # Answers to frames: not events of a story.
        await ws.send_json({"type": "ping", "request_id": "p1"})
        pong = await ws.receive_json()
        await ws.send_json({"type": "story.submit", "request_id": "bad1"})  # no text
        refused = await ws.receive_json()
        submit = {"text": STORY, "title": "The lighthouse", "request_id": "r1"}
        await ws.send_json({"type": "story.submit", **submit, "rewrite": True, "audio": True})
        events = await until_completed(ws)
    wire.event(pong, "socket", on_story=False)
    wire.event(refused, "socket", on_story=False)
    assert (pong["type"], pong.get("request_id")) == ("pong", "p1"), pong
    assert (refused["type"], refused.get("request_id")) == ("error", "bad1"), refused
    for event in events:
        wire.event(event, "socket")
    story_id = events[0]["story_id"]
    assert events[0].get("request_id") == "r1", events[0]
    assert events[-1]["status"] == "completed", events[-1]
    await check_outcomes(wire, svc, story_id)
    detail = await ended(wire, session, svc, token, story_id)
    assert {"completed_at", "enhanced_text", "audio"} <= set(detail), sorted(detail)

    # POST /v1/stories answers 202; the story's events then come as SSE, same JSON.
    body = {"text": STORY, "rewrite": False, "audio": False}
    queued = await http_json(
        wire, session, "POST", f"{base}/v1/stories", 202, STORY_QUEUED, json=body, headers=auth
    )
    async with (
        asyncio.timeout(60),
        session.get(f"{base}{queued['links']['events']}", headers=auth) as res,
    ):
        async for event in sse_events(res):
            wire.event(event, "sse")
            if event["type"] == "story.completed":
                break

    # Sections 2 and 3: errors, health.
    await http_json(wire, session, "GET", f"{base}/v1/stories/nope", 404, HTTP_ERROR, headers=auth)
    empty = {"text": ""}
    await http_json(
        wire, session, "POST", f"{base}/v1/stories", 422, HTTP_ERROR, json=empty, headers=auth
    )
    await http_json(wire, session, "GET", f"{base}/v1/auth/me", 401, HTTP_ERROR)
    await http_json(wire, session, "GET", f"{base}/healthz", 200, HEALTH)
    await http_json(wire, session, "GET", f"{base}/readyz", 200, READINESS)

    stream = {
        "story.accepted",
        "enhancement.started",
        "enhancement.delta",
        "suggestion",
        "insight",
        "enhancement.completed",
        "audio.started",
        "audio.chunk",
        "audio.word",
        "audio.completed",
        "story.completed",
    }
    wire.assert_clean(
        saw={f"socket:{t}" for t in stream | {"pong", "error"}}
        | {f"stream:{t}" for t in stream - {"story.accepted"}}
        | {"sse:enhancement.completed", "sse:story.completed", "stories:story.submitted"}
        | {f"analytics:{t}" for t in ("enhancement.completed", "narration.completed")}
        | {"analytics:story.completed", "outcomes:narration.completed"}
    )


async def test_a_story_whose_provider_fails(
    service: StartService, session: aiohttp.ClientSession, fake_gemini: StartGemini
) -> None:
    fake = await fake_gemini(fault="status", fault_status=503)
    svc = await gemini_service(service, fake)
    wire = Wire()
    token = await sign_up(session, svc.base, "ada")
    events = await socket_story(wire, session, svc, token, {"text": STORY})
    assert events[-1]["status"] == "failed", events[-1]
    story_id = events[0]["story_id"]
    outcomes = await check_outcomes(wire, svc, story_id)
    failed = next(o for o in outcomes if o["type"] == "enhancement.failed")
    assert failed["error"]["code"] == "provider_unavailable", failed
    detail = await ended(wire, session, svc, token, story_id)
    assert "error" in detail, detail
    wire.assert_clean(
        saw={"socket:error", "socket:story.completed", "stream:error", "stream:story.completed"}
        | {"analytics:enhancement.failed", "analytics:story.completed"}
    )


async def test_a_story_whose_voice_fails(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    wire = Wire()
    async with serve_fake_edge_tts(FakeEdgeConfig(port=0, fault="rate_limited")) as voice:
        svc = await service(
            speech_provider="edge",
            edge_tts_url=voice.url,
            tts_retry_attempts=2,
            tts_retry_initial_delay_s=0.05,
        )
        token = await sign_up(session, svc.base, "ada")
        events = await socket_story(wire, session, svc, token, {"text": STORY})
    errors = [e for e in events if e["type"] == "error"]
    assert [e["code"] for e in errors] == ["tts_unavailable"], errors
    assert events[-1]["status"] == "completed", events[-1]
    story_id = events[0]["story_id"]
    await check_outcomes(wire, svc, story_id)
    await ended(wire, session, svc, token, story_id)
    wire.assert_clean(
        saw={
            "socket:error",
            "stream:error",
            "analytics:narration.failed",
            "analytics:story.completed",
        }
    )


async def test_a_story_whose_enhancement_runs_again(
    service: StartService, session: aiohttp.ClientSession, bus_kind: str
) -> None:
    wire = Wire()
    if bus_kind == "memory":
        svc = await service(local_piece_delay_ms=20)
        events, _ = await story_with_outage(
            svc, session, long_story(6), "enhancement.delta", cut_for(1.5)
        )
    else:
        svc, events = await story_across_a_restart(service, session)
    for event in events:
        wire.event(event, "socket")
    assert events[-1]["status"] == "completed", events[-1]
    await check_outcomes(wire, svc, events[0]["story_id"])
    wire.assert_clean(saw={"socket:enhancement.reset", "stream:enhancement.reset"})


async def story_across_a_restart(
    service: StartService, session: aiohttp.ClientSession
) -> tuple[Service, list[dict[str, Any]]]:
    """Kafka: the service stops mid-rewrite, handing the story back at once; a new one
    (same topics, group and store) runs it again. Read from the first event by resuming."""
    first = await service(local_piece_delay_ms=20, worker_shutdown_grace_s=0)
    token = await sign_up(session, first.base, "phoenix")
    async with socket(session, first, token) as ws, asyncio.timeout(60):
        await ws.send_json({"type": "story.submit", "text": long_story(6), "audio": False})
        accepted = await ws.receive_json()
        deltas = 0
        while deltas < 3:
            deltas += (await ws.receive_json())["type"] == "enhancement.delta"
    await first.stop()
    second = await service(local_piece_delay_ms=20)
    async with socket(session, second, token) as ws:
        await ws.send_json({"type": "story.resume", "story_id": accepted["story_id"]})
        events = await until_completed(ws)
    return second, [accepted, *events]


# ---------------------------------------------------------------- live documents


def example(spec: Spec) -> Any:
    """A value of ``spec`` with every field of it, the optional ones too."""
    if isinstance(spec, Mapping):
        return {key.removesuffix("?"): example(value) for key, value in spec.items()}
    if isinstance(spec, list):
        return [example(spec[0])]
    first = spec.split("|")[0]
    if first.startswith("'"):
        return first.strip("'")
    values: dict[str, Any] = {"string": "x", "integer": 1, "number": 1.5, "boolean": True}
    return values[first]


def test_the_document_frames_carry_the_contracts_names() -> None:
    """Each frame of section 6, built from its table (every field, then the required ones
    alone), is what the socket's parser takes; without a required field it is refused."""
    for kind, spec in DOC_FRAMES.items():
        frame = {"type": kind, **example(spec)}
        message = client_message_adapter.validate_python(frame)
        assert message.type == kind
        assert message.model_dump(exclude_unset=True) == frame, kind
        required = {name: s for name, s in spec.items() if not name.endswith("?")}
        client_message_adapter.validate_python({"type": kind, **example(required)})
        for name in required:
            short = {"type": kind, **example({k: s for k, s in required.items() if k != name})}
            with pytest.raises(ValidationError):
                client_message_adapter.validate_python(short)


async def records_of(
    svc: Service,
    topic: str,
    key: str,
    until: Callable[[list[dict[str, Any]]], bool],
    isolation: Isolation = "read_uncommitted",
) -> list[Record]:
    """Every record of ``key`` on ``topic`` once the values among them satisfy ``until``."""
    bus = svc.app[keys.BUS]
    partition = bus.partition_for(topic, key, len(await bus.end_offsets(topic)))
    async with asyncio.timeout(30):
        while True:
            begin = (await bus.begin_offsets(topic)).get(partition, 0)
            end = (await bus.end_offsets(topic)).get(partition, 0)
            records = await bus.read_range(topic, partition, begin, end, isolation=isolation)
            mine = [r for r in records if r.key == key]
            if until([json.loads(r.value) for r in mine if r.value]):
                return mine
            await asyncio.sleep(0.05)


def doc_record(wire: Wire, channel: str, record: Record, spec: Spec) -> dict[str, Any]:
    """Check one record of a document (value, headers, key); its value."""
    value: dict[str, Any] = json.loads(record.value)
    kind = str(value.get("type"))
    where = f"{channel}@{record.cursor} {kind}"
    wire.seen.add(f"{channel}:{kind}")
    headers = {key: raw.decode() for key, raw in record.headers}
    wanted = HEADERS | {"event-type": kind}
    wire.problems += [
        f"{where}: header {key}={headers.get(key)!r}, not {expected!r}"
        for key, expected in wanted.items()
        if headers.get(key) != expected
    ]
    if record.key != value.get("doc_id"):
        wire.problems.append(f"{where}: key {record.key!r} is not its doc_id")
    wire.check(value, spec, where)
    return value


def analyzed_at(version: int) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda values: any(
        v["type"] in ("doc.analyzed", "document.analyzed") and v["version"] == version
        for v in values
    )


async def test_a_live_document_on_the_topics(service: StartService) -> None:
    """Section 6's names on every record a document makes: opened, analyzed, edited (a
    suggestion retracted), a version conflict, an invalid change, reopened, refused to
    another user, deleted."""
    svc = await service(doc_idle_ms=20, doc_snapshot_ms=50)
    bus, topics, wire = svc.app[keys.BUS], svc.topics, Wire()
    doc_id, owner, stranger = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    producer = bus.producer(client_id="test-documents")
    await producer.start()

    async def command(value: DocumentOpenRequested | DocumentEdited | DocumentDeleted) -> None:
        # As the gateway writes them: key doc_id, section 4's headers.
        await producer.send_and_wait(
            topics.documents, doc_id, encode(value), headers_for(value.type)
        )

    def stream(until: Callable[[list[dict[str, Any]]], bool]) -> Awaitable[list[Record]]:
        return records_of(svc, topics.stream, doc_id, until)

    try:
        opened = DocumentOpenRequested(
            doc_id=doc_id,
            user_id=owner,
            reply_to="socket-a",
            request_id="o1",
            create=True,
            text=STORY,
            title="The lighthouse",
        )
        await command(opened)
        first = [json.loads(r.value) for r in await stream(analyzed_at(0))]
        live = [e for e in first if e["type"] == "doc.suggestion"]
        assert live, first
        gone = live[0]
        change = DocChange(start_utf16=gone["start_utf16"], end_utf16=gone["end_utf16"], text="it")
        edit = DocumentEdited(
            doc_id=doc_id,
            user_id=owner,
            reply_to="socket-a",
            request_id="e1",
            version=1,
            changes=[change],
        )
        await command(edit)
        await stream(analyzed_at(1))
        conflict = edit.model_copy(update={"request_id": "e2", "version": 5})
        backwards = [DocChange(start_utf16=10, end_utf16=5, text="")]
        invalid = edit.model_copy(update={"request_id": "e3", "version": 2, "changes": backwards})
        reopen = DocumentOpenRequested(
            doc_id=doc_id, user_id=owner, reply_to="socket-b", request_id="o2", create=False
        )
        theirs = reopen.model_copy(update={"user_id": stranger, "reply_to": "socket-c"})
        for value in (conflict, invalid, reopen, theirs):
            await command(value)
        records = await stream(lambda values: sum(v["type"] == "error" for v in values) == 3)
        await command(DocumentDeleted(doc_id=doc_id, user_id=owner))
        snapshots = await records_of(
            svc,
            topics.snapshots,
            doc_id,
            lambda values: any(v["deleted"] for v in values),
            isolation="read_committed",
        )
        outcomes = await records_of(
            svc, topics.outcomes, doc_id, analyzed_at(1), isolation="read_committed"
        )
        commands = await records_of(svc, topics.documents, doc_id, lambda values: len(values) == 7)
    finally:
        await producer.stop()

    # The stream topic: section 6's events, section 1's error with section 6's fields.
    events: list[tuple[dict[str, Any], str | None]] = []
    for record in records:
        value = json.loads(record.value)
        spec: Mapping[str, Spec]
        if value["type"] == "error":
            spec = SERVER_EVENTS["error"]
            if value["code"] == "version_conflict":
                spec = merged(spec, VERSION_CONFLICT)
        else:
            # A type section 6 does not name fails on its `type`.
            spec = merged(DOC_EVENT, DOC_EVENTS.get(value["type"], {"type": "'doc.<known>'"}))
        event = doc_record(wire, "stream", record, spec)
        events.append((event, {k: raw.decode() for k, raw in record.headers}.get(REPLY_TO)))
    answers = {e["request_id"]: (e, to) for e, to in events if e.get("request_id")}
    assert (answers["o1"][0]["type"], answers["o1"][1]) == ("doc.opened", "socket-a")
    assert (answers["e1"][0]["type"], answers["e1"][0]["version"]) == ("doc.ack", 1)
    assert answers["e1"][1] == "socket-a"
    assert (answers["e2"][0]["code"], answers["e2"][0]["version"]) == ("version_conflict", 1)
    assert answers["e3"][0]["code"] == "invalid_message", answers["e3"]
    refused = next(e for e, to in events if to == "socket-c")
    assert refused["code"] == "not_found", refused
    retracted = next(e for e, _ in events if e["type"] == "doc.retracted")
    assert gone["id"] in retracted["ids"]
    # Answers go to the socket that asked (`reply-to`); what a pass finds, to every socket
    # that watches the document (no header).
    for event, to in events:
        if event["type"] in ("doc.opened", "doc.ack", "error"):
            assert to in ("socket-a", "socket-b", "socket-c"), event
        if event["type"] == "doc.retracted":
            assert to is None, event
        if event["type"] == "doc.insight":  # a pass's to all; a reopen's to its socket
            assert to in (None, "socket-b"), event
    # The reopen: doc.opened, the live suggestions and the insights, doc.analyzed; all to
    # the one socket.
    at = next(i for i, (e, _) in enumerate(events) if e.get("request_id") == "o2")
    end = next(i for i in range(at, len(events)) if events[i][0]["type"] == "doc.analyzed")
    assert {to for _, to in events[at : end + 1]} == {"socket-b"}
    assert {e["type"] for e, _ in events[at + 1 : end]} == {"doc.suggestion", "doc.insight"}
    assert events[end][0]["version"] == 1

    # The other topics: the outcome of each pass, and the project's commands and snapshots.
    for record in outcomes:
        doc_record(wire, "outcomes", record, DOCUMENT_ANALYZED)
    for record in (r for r in commands if r.value):
        kind = json.loads(record.value)["type"]
        doc_record(wire, "documents", record, merged(DOC_TOPIC_VALUE, DOC_COMMANDS[kind]))
    snapshot = merged(DOC_TOPIC_VALUE, DOC_SNAPSHOT, {"type": "'document.snapshot'"})
    for record in (r for r in snapshots if r.value):
        doc_record(wire, "document-snapshots", record, snapshot)
    wire.assert_clean(
        saw={f"stream:{kind}" for kind in DOC_EVENTS}
        | {"stream:error", "outcomes:document.analyzed", "document-snapshots:document.snapshot"}
        | {f"documents:{kind}" for kind in DOC_COMMANDS}
    )
