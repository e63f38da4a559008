"""The soak figure: does a long-running process hold its memory under steady use?

The load, as a small team uses the service: ``WRITERS`` writers typing into live
documents (each a user with one socket and one document) at ``KEYS_PER_S``, a key a
``doc.edit``, in bursts of a few words with pauses between them, new paragraphs now and
then; and a narrated story of ``STORY_WORDS`` words every ``STORY_EVERY_S`` seconds,
submitted on a socket of one of ``STORY_USERS`` users and followed to its end. The text
is never the same twice (words drawn at random), so no cache is fed the same input.

Every ``SAMPLE_S`` seconds the resident memory (RSS) of each process of the stack is
read. The figure holds when RSS at the end is within ``LEVEL_TOLERANCE`` of RSS at
``LEVEL_FROM_S`` (the start is not compared: warming up, the first documents, the
caches filling, are memory a process keeps), every edit is acknowledged, and every
story completes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from amplify_stream.client.api import AmplifyClient
from amplify_stream.client.live import LiveDocument
from amplify_stream.text.edits import Change, utf16_length
from benchmarks.measure import WORDS
from benchmarks.stack import Stack, embedded_stack, rss_kib, running_roles

WRITERS = 20
KEYS_PER_S = 3.0
# A burst is this many words; a pause after it is drawn from PAUSE_S.
BURST_WORDS = (2, 6)
PAUSE_S = (0.5, 3.0)
# A new paragraph after this many bursts, on average.
PARAGRAPH_EVERY = 6
STORY_EVERY_S = 3.0
STORY_WORDS = 300
STORY_USERS = 4
DURATION_S = 600.0
SAMPLE_S = 10.0
LEVEL_FROM_S = 180.0
LEVEL_TOLERANCE = 0.10
# After the load: how long the last edits' acks and the last stories may take.
SETTLE_S = 60.0


def words(rng: random.Random, n: int) -> list[str]:
    return [rng.choice(WORDS) for _ in range(n)]


def story_text(rng: random.Random) -> str:
    drawn = words(rng, STORY_WORDS)
    return " ".join(
        " ".join(drawn[i : i + 12]).capitalize() + "." for i in range(0, STORY_WORDS, 12)
    )


@dataclass
class _Writer:
    i: int
    ws: aiohttp.ClientWebSocketResponse
    doc: LiveDocument | None = None
    sent: set[int] = field(default_factory=set)
    acked: set[int] = field(default_factory=set)
    errors: Counter[str] = field(default_factory=Counter)
    opened: asyncio.Event = field(default_factory=asyncio.Event)

    async def read(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            frame = orjson.loads(msg.data)
            kind = frame["type"]
            if kind == "doc.opened":
                self.doc = LiveDocument.opened(frame)
                self.opened.set()
            elif self.doc is not None and frame.get("doc_id") == self.doc.doc_id:
                self.doc.receive(frame)
                if kind == "doc.ack":
                    self.acked.add(frame["version"])
            if kind == "error":
                self.errors[str(frame.get("code"))] += 1

    async def type(self, deadline: float) -> None:
        rng = random.Random(self.i)
        await self.ws.send_str(
            orjson.dumps(
                {"type": "doc.open", "title": f"soak {self.i}", "text": " ".join(words(rng, 8))}
            ).decode()
        )
        async with asyncio.timeout(60):
            await self.opened.wait()
        doc = self.doc
        assert doc is not None
        offset = utf16_length(doc.text)
        interval = 1 / KEYS_PER_S
        at = time.monotonic() + rng.random()
        while at < deadline:
            burst = words(rng, rng.randint(*BURST_WORDS))
            text = ("\n" if rng.random() < 1 / PARAGRAPH_EVERY else " ") + " ".join(burst)
            for key in text:
                if (delay := at - time.monotonic()) > 0:
                    await asyncio.sleep(delay)
                frame = doc.edit([Change(offset, offset, key)])
                offset += utf16_length(key)
                self.sent.add(doc.version)
                await self.ws.send_str(orjson.dumps(frame).decode())
                at += interval
            at += rng.uniform(*PAUSE_S)

    async def settle(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SETTLE_S):
                while not self.sent <= self.acked:  # noqa: ASYNC110 (a poll, not a wait)
                    await asyncio.sleep(0.2)


@dataclass
class _Stories:
    statuses: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    submitted: int = 0

    async def one(self, client: AmplifyClient, rng: random.Random) -> None:
        status = "unfinished"
        try:
            async with client.submit(story_text(rng), title="soak") as story:
                async for event in story:
                    if event["type"] == "error":
                        self.errors[str(event.get("code"))] += 1
                    elif event["type"] == "story.completed":
                        status = event["status"]
        except Exception as exc:
            status = f"client error: {type(exc).__name__}"
        self.statuses[status] += 1

    async def run(self, clients: list[AmplifyClient], deadline: float) -> None:
        rng = random.Random(99)
        running: set[asyncio.Task[None]] = set()
        at = time.monotonic()
        n = 0
        while at < deadline:
            if (delay := at - time.monotonic()) > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(self.one(clients[n % len(clients)], rng))
            running.add(task)
            task.add_done_callback(running.discard)
            self.submitted += 1
            n += 1
            at += STORY_EVERY_S
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SETTLE_S):
                await asyncio.gather(*running, return_exceptions=True)
        for task in running:
            task.cancel()


async def _sample(stack: Stack, began: float, series: list[dict[str, Any]]) -> None:
    while True:
        row: dict[str, Any] = {"t_s": round(time.monotonic() - began, 1)}
        for role, pid in stack.pids.items():
            with contextlib.suppress(OSError, RuntimeError):
                row[role] = round(rss_kib(pid) / 1024, 1)
        series.append(row)
        print("rss MiB", row, file=sys.stderr, flush=True)
        await asyncio.sleep(SAMPLE_S)


def level(series: list[dict[str, Any]], role: str) -> dict[str, Any]:
    """RSS of ``role`` at the start, at ``LEVEL_FROM_S`` and at the end (MiB), and the
    growth from ``LEVEL_FROM_S`` to the end."""
    rows = [r for r in series if role in r]
    start = rows[0][role]
    at_level = next((r[role] for r in rows if r["t_s"] >= LEVEL_FROM_S), rows[-1][role])
    end = rows[-1][role]
    return {
        "start_mib": start,
        "at_level_from_mib": at_level,
        "end_mib": end,
        "peak_mib": max(r[role] for r in rows),
        "growth_after_level_from": round(end / at_level - 1, 3),
    }


async def soak(stack: Stack, duration_s: float = DURATION_S) -> dict[str, Any]:
    run = uuid.uuid4().hex[:6]
    series: list[dict[str, Any]] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        tokens = [await stack.token(session, f"soak{run}w{i}") for i in range(WRITERS)]
        story_tokens = [await stack.token(session, f"soak{run}s{i}") for i in range(STORY_USERS)]
        sockets = [
            await session.ws_connect(stack.ws_url, headers={"Authorization": f"Bearer {t}"})
            for t in tokens
        ]
        writers = [_Writer(i, ws) for i, ws in enumerate(sockets)]
        readers = [asyncio.create_task(w.read()) for w in writers]
        clients = [AmplifyClient(stack.base, t) for t in story_tokens]
        stories = _Stories()
        began = time.monotonic()
        sampler = asyncio.create_task(_sample(stack, began, series))
        try:
            deadline = began + duration_s
            await asyncio.gather(
                stories.run(clients, deadline), *(w.type(deadline) for w in writers)
            )
            await asyncio.gather(*(w.settle() for w in writers))
            await asyncio.sleep(SAMPLE_S)  # one sample after the load
        finally:
            sampler.cancel()
            for ws in sockets:
                await ws.close()
            for task in readers:
                task.cancel()
            await asyncio.gather(sampler, *readers, return_exceptions=True)
            for client in clients:
                await client.close()
    edits = sum(len(w.sent) for w in writers)
    unacked = sum(len(w.sent - w.acked) for w in writers)
    errors = sum((w.errors for w in writers), Counter()) + stories.errors
    memory = {role: level(series, role) for role in stack.pids}
    holds = all(m["growth_after_level_from"] <= LEVEL_TOLERANCE for m in memory.values())
    completed = stories.statuses.get("completed", 0)
    return {
        "duration_s": duration_s,
        "writers": WRITERS,
        "keys_per_s": KEYS_PER_S,
        "story_every_s": STORY_EVERY_S,
        "story_words": STORY_WORDS,
        "edits": edits,
        "unacked": unacked,
        "stories": stories.submitted,
        "story_statuses": dict(stories.statuses),
        "errors": dict(errors),
        "rss": memory,
        "rss_series": series,
        "level_from_s": LEVEL_FROM_S,
        "tolerance": LEVEL_TOLERANCE,
        "met": holds and unacked == 0 and completed == stories.submitted,
    }


@contextlib.asynccontextmanager
async def soak_stack(bus: str) -> AsyncIterator[Stack]:
    """The embedded default (``memory``), or every role as its own process (``kafka``)."""
    if bus == "memory":
        async with embedded_stack() as stack:
            yield stack
    else:
        async with running_roles(
            ["enhancer", "narrator", "projector", "documents"], AMPLIFY_ENHANCER_PROVIDER="local"
        ) as stack:
            yield stack


async def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bus", choices=["memory", "kafka"], default="memory")
    parser.add_argument("--seconds", type=float, default=DURATION_S)
    args = parser.parse_args()
    async with soak_stack(args.bus) as stack:
        result = await soak(stack, args.seconds)
    result.pop("rss_series")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    asyncio.run(_main())
