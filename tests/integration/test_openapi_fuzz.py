"""schemathesis against the live app: every operation of ``/openapi.json``, signed in,
with no 5xx and no answer outside the document (status, content type, headers, body
schema; the ``data`` of each SSE event against the event models), every secured route
refusing a request without its token, invalid input refused with a 4xx, and an
undocumented method answered 405 with ``Allow``.

The run is schemathesis's own engine (what ``st run`` drives): the coverage (boundary and
negative values) and fuzzing phases, bounded by ``max-examples`` per operation. No
``max-time``: with one, the engine keeps fuzzing in rounds until it runs out. The engine
is synchronous and makes real HTTP requests, so it runs in a thread while this loop serves
the app.

Bounded rather than left out:
- ``GET /v1/stream``: schemathesis sends no ``Upgrade``, so it gets the route's HTTP
  answers (400 not an upgrade, 401, 403) and never a socket; the frames are not HTTP
  (test_pipeline.py covers them);
- the SSE streams: ``POST /v1/stories`` streams only for ``Accept: text/event-stream``,
  which schemathesis does not send (it gets the 202), and schemathesis reads at most
  ``max-stream-events`` (20) events of ``GET /v1/stories/{id}/events`` before it closes
  the connection; the small stories below complete in seconds anyway.
Left out: the stateful phase (call sequences through response links), which would
multiply the run time; the story routes still get real ids (schemathesis reuses the
``story_id`` of the 202 answers) besides unknown ones.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest
import schemathesis
from schemathesis.engine import events, from_schema

from tests.integration.conftest import Service
from tests.support import sign_up

StartService = Callable[..., Awaitable[Service]]

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "ignored_auth",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
)
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
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
            "phases": {"stateful": {"enabled": False}},
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
    # Every operation of the document was exercised, but the document's own: schemathesis
    # never fuzzes the path it loaded the schema from (test_openapi.py reads it).
    async with session.get(f"{svc.base}/openapi.json") as res:
        document = await res.json()
    expected = {
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method in item
        if path != "/openapi.json"
    }
    assert expected <= set(outcome.requests), expected - set(outcome.requests)


# ---------------------------------------------------------------- what it found, pinned


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
