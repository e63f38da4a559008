"""One user through several gateways gets exactly the limit (issue 24's ``scale_gateways``
figure): the gateways as separate processes on the real broker, one store and one Redis.

- Submissions: ``3 x per_minute`` stories posted at once, round-robin over the gateways
  (the store admits them under a lock on the user's row: ``store/admission.py``).
- Edits: on each gateway a socket opens a document of its own, then every socket sends
  ``3 x per_second`` edits at once (the burst takes far less than the second that refills
  the bucket). Each edit gets exactly one answer, matched by its ``request_id``:
  ``rate_limited`` from the gateway (refused), or its owner's ``doc.ack`` or
  ``version_conflict`` (admitted: its owner saw it). Counted in Redis when ``redis_url``
  is given, else each gateway counts its own (up to the number of gateways times the limit).

``scale_limits()`` starts the processes itself; ``one_user_through()`` measures gateways
already running (the end-to-end test, ``tests/e2e/test_cluster_limits.py``, runs it on
its own processes). ``python -m benchmarks.scale_limits --redis-url URL`` prints the figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
import uuid
from collections import Counter
from typing import Any

import aiohttp
import orjson

from benchmarks.stack import running_roles

GATEWAYS = 3
SUBMISSIONS_PER_MINUTE = 10
EDITS_PER_SECOND = 3
ANSWER_TIMEOUT_S = 30.0


async def one_user_through(
    bases: list[str],
    token: str,
    *,
    submissions_per_minute: int,
    edits_per_second: int,
    session: aiohttp.ClientSession,
) -> dict[str, dict[str, Any]]:
    """One user's bursts spread over the gateways at ``bases`` (running with these two
    limits): ``{"submissions": {"limit", "admitted", ...}, "edits": {...}}``."""
    return {
        "submissions": await _submissions(bases, token, submissions_per_minute, session),
        "edits": await _edits(bases, token, edits_per_second, session),
    }


async def _submissions(
    bases: list[str], token: str, limit: int, session: aiohttp.ClientSession
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    body = {"text": "The harbour was quiet. Mara watched the boats.", "audio": False}

    async def post(n: int) -> tuple[int, str | None]:
        url = f"{bases[n % len(bases)]}/v1/stories"
        async with session.post(url, json=body, headers=headers) as res:
            await res.read()
            return res.status, res.headers.get("Retry-After")

    answers = await asyncio.gather(*(post(n) for n in range(len(bases) * limit)))
    statuses = Counter(status for status, _ in answers)
    retry_after = sorted({int(r) for status, r in answers if status == 429 and r is not None})
    return {
        "limit": limit,
        "admitted": statuses[202],
        "refused": statuses[429],
        "statuses": {str(k): v for k, v in statuses.items()},
        "retry_after_s": retry_after,
    }


async def _edits(
    bases: list[str], token: str, limit: int, session: aiohttp.ClientSession
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    per_socket = 3 * limit  # each socket alone would be over the limit
    async with contextlib.AsyncExitStack() as stack:
        sockets = [
            await stack.enter_async_context(
                session.ws_connect(base.replace("http", "ws", 1) + "/v1/stream", headers=headers)
            )
            for base in bases
        ]
        docs = await asyncio.gather(*(_open(ws) for ws in sockets))
        # Every frame first, then the answers: the burst takes milliseconds.
        began = time.monotonic()
        for n in range(per_socket):
            for ws, doc_id in zip(sockets, docs, strict=True):
                change = {"start_utf16": 0, "end_utf16": 0, "text": "x"}
                await ws.send_json(
                    {
                        "type": "doc.edit",
                        "doc_id": doc_id,
                        "version": n + 1,
                        "changes": [change],
                        "request_id": f"e{n}",
                    }
                )
        answers = await asyncio.gather(*(_answers(ws, per_socket) for ws in sockets))
    outcomes = Counter(outcome for socket, _ in answers for outcome in socket.values())
    refused = outcomes.pop("rate_limited", 0)
    return {
        "limit": limit,
        "admitted": sum(outcomes.values()),
        "refused": refused,
        "sent": per_socket * len(bases),
        "answers": {"rate_limited": refused, **outcomes},
        # From the first edit sent to the last refusal heard: every gateway had decided
        # on every edit by then (a socket's frames are taken in order). Under a second
        # over the rate, no token came back during the burst.
        "decided_within_ms": round(1000 * (max(at for _, at in answers) - began), 1),
    }


async def _open(ws: aiohttp.ClientWebSocketResponse) -> str:
    await ws.send_json({"type": "doc.open", "text": "The harbour.", "request_id": "open"})
    async with asyncio.timeout(ANSWER_TIMEOUT_S):
        while True:
            frame = orjson.loads((await ws.receive()).data)
            if frame["type"] == "doc.opened":
                doc_id: str = frame["doc_id"]
                return doc_id
            if frame["type"] == "error":
                raise RuntimeError(f"doc.open refused: {frame}")


async def _answers(ws: aiohttp.ClientWebSocketResponse, edits: int) -> tuple[dict[str, str], float]:
    """Each edit's one answer by its request_id (``rate_limited``, ``doc.ack`` or the
    owner's error code), and when the last refusal came."""
    answered: dict[str, str] = {}
    refused_at = 0.0
    async with asyncio.timeout(ANSWER_TIMEOUT_S):
        while len(answered) < edits:
            msg = await ws.receive()
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"the socket closed with {edits - len(answered)} unanswered")
            frame = orjson.loads(msg.data)
            request = frame.get("request_id")
            if request is None or not request.startswith("e"):
                continue
            if frame["type"] == "doc.ack":
                answered.setdefault(request, "doc.ack")  # twice after an owner's crash
            elif frame["type"] == "error":
                answered[request] = frame["code"]
                if frame["code"] == "rate_limited":
                    refused_at = time.monotonic()
    return answered, refused_at


async def scale_limits(
    *,
    redis_url: str | None,
    database_url: str | None = None,
    gateways: int = GATEWAYS,
    submissions_per_minute: int = SUBMISSIONS_PER_MINUTE,
    edits_per_second: int = EDITS_PER_SECOND,
) -> dict[str, dict[str, Any]]:
    """``gateways`` gateway processes and a documents worker on the real broker, sharing
    ``database_url`` (a SQLite file of the run when None) and ``redis_url`` (None: each
    gateway counts edits alone, the embedded default); one user's bursts through them.
    ``{"submissions": {"limit": N, "admitted": M, ...}, "edits": {...}}``."""
    env = {
        "AMPLIFY_SUBMISSIONS_PER_MINUTE": str(submissions_per_minute),
        "AMPLIFY_DOC_EDITS_PER_SECOND": str(edits_per_second),
        "AMPLIFY_ENHANCER_PROVIDER": "local",
    }
    if redis_url is not None:
        env["AMPLIFY_REDIS_URL"] = redis_url
    if database_url is not None:
        env["AMPLIFY_DATABASE_URL"] = database_url
    async with (
        running_roles(["documents"], gateways=gateways, **env) as stack,
        aiohttp.ClientSession() as session,
    ):
        token = await stack.token(session, f"limits{uuid.uuid4().hex[:8]}")
        return await one_user_through(
            stack.bases,
            token,
            submissions_per_minute=submissions_per_minute,
            edits_per_second=edits_per_second,
            session=session,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", help="where edits are counted (none: per gateway)")
    parser.add_argument("--database-url", help="the store (default: a SQLite file of the run)")
    parser.add_argument("--gateways", type=int, default=GATEWAYS)
    args = parser.parse_args()
    figure = asyncio.run(
        scale_limits(
            redis_url=args.redis_url, database_url=args.database_url, gateways=args.gateways
        )
    )
    print(json.dumps(figure, indent=2))


if __name__ == "__main__":
    main()
