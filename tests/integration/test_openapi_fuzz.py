"""schemathesis against the live app: every operation of ``/openapi.json``, signed in,
with schemathesis's default checks, as ``st run`` applies them: no 5xx, no answer outside
the document (status, content type, headers, body schema; the ``data`` of each SSE event
against the event models), every request the document calls valid accepted and every one
it calls invalid refused, every secured route refusing a request without its token, and
an undocumented method answered 405 with ``Allow``.

The run is schemathesis's own engine (what ``st run`` drives): the coverage (boundary and
negative values) and fuzzing phases, bounded by ``max-examples`` per operation. No
``max-time``: with one, the engine keeps fuzzing in rounds until it runs out. The engine
is synchronous and makes real HTTP requests, so it runs in a thread while this loop serves
the app.

What no schema can say is tuned per operation (``OPERATIONS``), the way schemathesis's
own ``st explain ST201``/``ST202`` advises, each for the contract's reason:
- which ids and cursors exist is state, not shape: a well-formed ``before`` that is none of
  the caller's is 400 (docs/protocol.md section 2, not 404), and so is a well-formed
  cursor of another partition or past the stream's end (410 past retention);
- a text over the limit is 413 ``story_too_large``, a status outside schemathesis's list
  of refusals;
- JSON Schema counts characters where bcrypt's limit counts bytes (72): registration is
  fuzzed with ASCII text, where the two agree.
``test_the_document_refuses_what_the_service_refuses`` pins what those tunings would let by:
the requests schemathesis found refused while the document called them valid.

Bounded rather than left out:
- the SSE streams: ``POST /v1/stories`` streams only for ``Accept: text/event-stream``,
  which schemathesis does not send (it gets the 202), and schemathesis reads at most
  ``max-stream-events`` (20) events of ``GET /v1/stories/{id}/events`` before it closes
  the connection; the small stories below complete in seconds anyway.
Left out:
- ``GET /v1/stream``: a request the document calls valid opens a WebSocket (101), and
  schemathesis's HTTP client then sends its next request down that socket. Its HTTP
  answers (400 without the upgrade headers, 401, 403) are test_security.py's and the
  pinned test's, its frames test_pipeline.py's;
- the stateful phase (call sequences through response links), which would multiply the
  run time; the story routes still get real ids (schemathesis reuses the ``story_id`` of
  the 202 answers) besides unknown ones.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jsonschema
import pytest
import schemathesis
from schemathesis.engine import events, from_schema

from tests.integration.conftest import Service
from tests.support import sign_up

StartService = Callable[..., Awaitable[Service]]

# schemathesis's defaults, and what the contract adds to them (see above).
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
REFUSED = ["400", "401", "403", "404", "405", "406", "409", "415", "422", "428", "429", "5xx"]
OPERATIONS = [
    *(
        {
            "include-name": name,
            "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, *more]}},
        }
        for name, more in (
            ("GET /v1/stories", ["400"]),
            ("GET /v1/documents", ["400"]),
            ("GET /v1/stories/{story_id}/events", ["400", "410"]),
        )
    ),
    {
        "include-name": "POST /v1/stories",
        "checks": {"negative_data_rejection": {"expected-statuses": [*REFUSED, "413"]}},
    },
    {"include-name": "POST /v1/auth/register", "generation": {"codec": "ascii"}},
    {"include-name": "GET /v1/stream", "enabled": False},
]
# About 40-50 s on two cores (most of it generating the cases, the rest the service).
MAX_EXAMPLES = 15


@dataclass
class Outcome:
    failures: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)
    stop_reason: str = ""


def fuzz(base: str, token: str) -> Outcome:
    config = schemathesis.Config.from_dict(
        {
            # Reproducible: the same cases every run.
            "seed": 20260101,
            "request-timeout": 10,
            "max-stream-events": 20,
            "headers": {"Authorization": f"Bearer {token}"},
            "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
            "phases": {"stateful": {"enabled": False}},
            "operations": OPERATIONS,
        }
    )
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json", config=config)
    outcome = Outcome()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            label = event.recorder.label
            outcome.requests[label] += len(event.recorder.interactions)
            for checks in event.recorder.checks.values():
                for check in checks:
                    if check.failure_info is not None:
                        failure = check.failure_info.failure
                        outcome.failures.append(
                            f"{label}: {failure.title}: {failure.message}\n"
                            f"{check.failure_info.code_sample}"
                        )
        elif isinstance(event, events.NonFatalError | events.FatalError):
            outcome.errors.append(repr(event))
        elif isinstance(event, events.EngineFinished):
            outcome.stop_reason = event.stop_reason.value
            outcome.failures += [f"{f.operation}: {f.title}: {f.message}" for f in event.failures]
    return outcome


@pytest.mark.parametrize("bus_kind", ["memory"], indirect=True)
@pytest.mark.timeout(180)
async def test_schemathesis_finds_no_server_error_and_no_schema_break(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service(
        # Limits high enough that the fuzzer reaches the routes rather than 429s, and small
        # stories, so the stories it does submit keep the workers busy only briefly.
        submissions_per_minute=10_000,
        max_running_per_user=10_000,
        login_attempts_per_minute_per_user=10_000,
        login_attempts_per_minute_per_address=10_000,
        max_story_chars=2_000,
    )
    token = await sign_up(session, svc.base, "fuzzer")
    started = time.monotonic()
    outcome = await asyncio.to_thread(fuzz, svc.base, token)
    elapsed = time.monotonic() - started
    summary = ", ".join(f"{label}: {n}" for label, n in sorted(outcome.requests.items()))
    print(f"schemathesis: {sum(outcome.requests.values())} requests in {elapsed:.1f} s ({summary})")
    assert not outcome.errors, "\n".join(outcome.errors)
    assert not outcome.failures, "\n\n".join(outcome.failures)
    assert outcome.stop_reason == "completed", outcome.stop_reason
    # Every operation of the document was exercised, but the document's own (schemathesis
    # never fuzzes the path it loaded the schema from; test_openapi.py reads it) and the
    # WebSocket's (left out, above).
    async with session.get(f"{svc.base}/openapi.json") as res:
        document = await res.json()
    expected = {
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method in item
        if path not in ("/openapi.json", "/v1/stream")
    }
    assert expected <= set(outcome.requests), expected - set(outcome.requests)


# ---------------------------------------------------------------- what it found, pinned


def document_accepts(document: dict[str, Any], schema: dict[str, Any], value: Any) -> bool:
    """Whether ``value`` is valid by ``schema``, a part of the OpenAPI ``document`` (its
    ``$ref``s resolved in it, formats such as ``uuid`` asserted)."""
    root = {"components": document["components"], **schema}
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    return jsonschema.Draft202012Validator(root, format_checker=checker).is_valid(value)


def parameter(document: dict[str, Any], method: str, path: str, name: str) -> dict[str, Any]:
    params = document["paths"][path][method]["parameters"]
    found: dict[str, Any] = next(p for p in params if p["name"] == name)
    return found


@pytest.mark.parametrize("bus_kind", ["memory"], indirect=True)
async def test_the_document_refuses_what_the_service_refuses(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    """Requests the service refuses that ``/openapi.json`` called valid (schemathesis's
    default checks found them): the document now calls each invalid, and the service
    still refuses each with the contract's status and code. The fuzz run lets a 400 by on
    the list and events routes (state, see above): these keep their shape in the document."""
    svc = await service(max_story_chars=100)
    token = await sign_up(session, svc.base, "pinned")
    headers = {"Authorization": f"Bearer {token}"}
    async with session.get(f"{svc.base}/openapi.json") as res:
        document = await res.json()
    story = "/v1/stories/{story_id}/events"
    async with session.post(
        f"{svc.base}/v1/stories", json={"text": "Once.", "audio": False}, headers=headers
    ) as res:
        events = story.replace("{story_id}", (await res.json())["story_id"])
    submit = document["paths"]["/v1/stories"]["post"]["requestBody"]["content"]
    body_schema = submit["application/json"]["schema"]
    register = document["paths"]["/v1/auth/register"]["post"]["requestBody"]["content"]
    cases: list[tuple[str, str, dict[str, Any], dict[str, Any], Any, int, str]] = [
        # (method, url, request, the schema that refuses it, the value, status, code)
        *(
            ("POST", "/v1/stories", {"json": body}, body_schema, body, status, code)
            for body, status, code in (
                ({"text": "Once.", "focus": ["plot", "plot"]}, 422, "invalid_story"),
                ({"text": " \n\t"}, 422, "invalid_story"),
                ({"text": "Once.", "title": "nul\x00"}, 422, "invalid_story"),
                ({"text": "x" * 101}, 413, "story_too_large"),
            )
        ),
        *(
            (
                "GET",
                f"{route}?before=0",
                {},
                parameter(document, "get", route, "before")["schema"],
                "0",
                400,
                "invalid_message",
            )
            for route in ("/v1/stories", "/v1/documents")
        ),
        (
            "GET",
            f"{events}?cursor=WR",
            {},
            parameter(document, "get", story, "cursor")["schema"],
            "WR",
            400,
            "invalid_message",
        ),
        (
            "GET",
            events,
            {"headers": {"Last-Event-ID": "1-x"}},
            parameter(document, "get", story, "Last-Event-ID")["schema"],
            "1-x",
            400,
            "invalid_message",
        ),
        (
            "POST",
            "/v1/auth/register",
            {"json": {"username": "someone", "password": "short"}},
            register["application/json"]["schema"],
            {"username": "someone", "password": "short"},
            422,
            "invalid_account",
        ),
    ]
    for method, url, request, schema, value, status, code in cases:
        assert not document_accepts(document, schema, value), (method, url, value)
        sent = {**request, "headers": {**headers, **request.get("headers", {})}}
        async with session.request(method, f"{svc.base}{url}", **sent) as res:
            body = await res.json()
            assert (res.status, body["error"]["code"]) == (status, code), (method, url, body)
    # The socket without the upgrade the document requires: 400, the JSON error body.
    stream = document["paths"]["/v1/stream"]["get"]
    required = {p["name"] for p in stream["parameters"] if p["required"]}
    assert {"Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version"} <= required
    async with session.get(f"{svc.base}/v1/stream", headers=headers) as res:
        assert (res.status, (await res.json())["error"]["code"]) == (400, "invalid_message")


@pytest.mark.parametrize("bus_kind", ["memory"], indirect=True)
async def test_an_empty_idempotency_key_is_a_key_like_any_other(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    """It was read as no key by the lookup and as a key by the unique index: the second
    submission with ``""`` got an undocumented 409."""
    svc = await service()
    headers = {"Authorization": f"Bearer {await sign_up(session, svc.base, 'blank-key')}"}
    body = {"text": "Once.", "audio": False, "idempotency_key": ""}
    ids = []
    for _ in range(2):
        async with session.post(f"{svc.base}/v1/stories", json=body, headers=headers) as res:
            assert res.status == 202, await res.text()
            ids.append((await res.json())["story_id"])
    assert ids[0] == ids[1]


@pytest.mark.parametrize("bus_kind", ["memory"], indirect=True)
async def test_a_form_aiohttp_cannot_read_is_a_400(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    """A multipart body without its boundary made ``request.post()`` raise: a 500."""
    svc = await service()
    for content_type, data in (
        ("multipart/form-data", b"username=someone"),
        ("application/x-www-form-urlencoded; charset=no-such-codec", b"username=someone"),
    ):
        headers = {"Content-Type": content_type}
        async with session.post(f"{svc.base}/v1/auth/token", data=data, headers=headers) as res:
            assert res.status == 400, (content_type, await res.text())
            assert (await res.json())["error"]["code"] == "invalid_message"
