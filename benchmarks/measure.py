"""The measurements: added token latency through the service and its two baselines, time
to first audio, memory per idle socket, and submission latency under a steady rate."""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
import uuid
from collections.abc import Coroutine, Iterable
from datetime import datetime
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from benchmarks.stack import KAFKA, CpuMeter, Stack, cpu_seconds, free_port, rss_kib

# One concurrency level may take this long; a machine that cannot keep up says so.
RUN_LIMIT_S = 75.0

WORDS = [
    "the",
    "tide",
    "rose",
    "over",
    "the",
    "old",
    "harbour",
    "wall",
    "while",
    "Mara",
    "counted",
    "lanterns",
    "and",
    "listened",
    "to",
    "the",
    "gulls",
    "argue",
    "about",
    "bread",
    "as",
    "evening",
    "settled",
    "into",
    "the",
    "narrow",
    "streets",
]


# Sentences an editor has something to say about (dialogue tags with adverbs, an
# intensifier, a feeling named, "suddenly"), among plain ones: suggestions all through.
CRAFT_SENTENCES = [
    '"We should not be here," she said quietly.',
    "The door was opened by the wind.",
    "Tom felt very cold and he noticed the smell of salt and rust.",
    "The waves were loud against the rocks below.",
    '"Stay close," Tom whispered nervously.',
    "Suddenly the lamp above them flickered and went out.",
    "Mara was afraid of the stairs that wound up into the dark.",
    "Gulls argued over the harbour wall as evening settled into the narrow streets.",
]


def craft_story(words: int) -> str:
    """About ``words`` words of ``CRAFT_SENTENCES`` in turn, each scene numbered."""
    out: list[str] = []
    scene = 0
    while sum(len(s.split()) for s in out) < words:
        scene += 1
        out.append(f"Night {scene}.")
        out += CRAFT_SENTENCES
    return " ".join(out)


def story(words: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    out = [rng.choice(WORDS) for _ in range(words)]
    sentences = [" ".join(out[i : i + 12]).capitalize() + "." for i in range(0, words, 12)]
    return " ".join(sentences)


def at_ms(at: str) -> float:
    return datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp() * 1000


def percentiles(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {"n": 0}
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"n": len(ordered), "p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99)}


async def service_token_latency(stack: Stack, streams: int, words: int) -> dict[str, Any]:
    """Added latency of every token: client receive time minus the ``at`` of the
    enhancement.delta that carried it (stamped by the enhancer the moment the provider
    yielded the piece). Percentiles are per word, so pieces that went out together in
    one delta when the worker fell behind count as many times as they hold words."""
    samples: list[float] = []
    finished = received_words = deltas = 0
    per_delta: list[float] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        token = await stack.token(session, f"bench{uuid.uuid4().hex[:8]}")
        headers = {"Authorization": f"Bearer {token}"}

        async def one(i: int) -> None:
            nonlocal finished, received_words, deltas
            async with session.ws_connect(stack.ws_url, headers=headers) as ws:
                await ws.send_json(
                    {"type": "story.submit", "text": story(words, i), "audio": False}
                )
                async for msg in ws:
                    received = time.time() * 1000
                    event = orjson.loads(msg.data)
                    if event["type"] == "enhancement.delta":
                        # Per token: a delta that carries several pieces (yielded at once,
                        # stamped once) counts once for each word in it.
                        words_in = max(1, len(event["text"].split()))
                        latency = received - at_ms(event["at"])
                        samples.extend([latency] * words_in)
                        per_delta.append(latency)
                        received_words += words_in
                        deltas += 1
                    elif event["type"] == "story.completed":
                        finished += 1
                        return

        meter = CpuMeter(stack.pids)
        meter.start()
        started = time.monotonic()
        timed_out = not await _bounded(one(i) for i in range(streams))
        cpu = meter.stop()
    return {
        "streams": streams,
        "finished": finished,
        "timed_out": timed_out,
        "seconds": round(time.monotonic() - started, 1),
        "words": received_words,
        "deltas": deltas,
        # Each delta once, however many words it carries (how the figure was counted
        # before deltas were coalesced).
        "per_delta": percentiles(per_delta),
        # CPU by process (the broker's and other work's too): the cost, where latency on
        # a shared 2-core machine only says whether it kept up.
        "cpu_s": cpu,
        "cpu_ms_per_word": {
            role: round(seconds * 1000 / max(1, received_words), 3) for role, seconds in cpu.items()
        },
    } | percentiles(samples)


async def held_streams_latency(
    stack: Stack, streams: int, words: int, ramp_s: float, tokens_per_s: float
) -> dict[str, Any]:
    """Added latency while ``streams`` streams are held at once: they start one after
    another over ``ramp_s`` (so their start-up work is spread, as arrivals are), each long
    enough to outlast the ramp, and only what arrives while all of them stream counts
    (from the last start plus a second, to the earliest end less a second)."""
    samples: list[tuple[float, float, int]] = []  # (received, latency, words)
    finished = 0
    stream_s = words / tokens_per_s
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        token = await stack.token(session, f"bench{uuid.uuid4().hex[:8]}")
        headers = {"Authorization": f"Bearer {token}"}
        began = time.time() * 1000

        async def one(i: int) -> None:
            nonlocal finished
            await asyncio.sleep(i * ramp_s / streams)
            async with session.ws_connect(stack.ws_url, headers=headers) as ws:
                await ws.send_json(
                    {"type": "story.submit", "text": story(words, i), "audio": False}
                )
                async for msg in ws:
                    received = time.time() * 1000
                    event = orjson.loads(msg.data)
                    if event["type"] == "enhancement.delta":
                        n = max(1, len(event["text"].split()))
                        samples.append((received, received - at_ms(event["at"]), n))
                    elif event["type"] == "story.completed":
                        finished += 1
                        return

        meter = CpuMeter(stack.pids)
        meter.start()
        timed_out = not await _bounded(one(i) for i in range(streams))
        cpu = meter.stop()
    window = (began + (ramp_s + 1) * 1000, began + (stream_s - 1) * 1000)
    held = [lat for at, lat, n in samples if window[0] <= at <= window[1] for _ in range(n)]
    return {
        "streams": streams,
        "finished": finished,
        "timed_out": timed_out,
        "ramp_s": ramp_s,
        "window_s": round((window[1] - window[0]) / 1000, 1),
        "cpu_s": cpu,
    } | percentiles(held)


async def _bounded(runs: Iterable[Coroutine[Any, Any, None]]) -> bool:
    """Run all at once within ``RUN_LIMIT_S``; False when the machine could not keep up
    (the samples gathered so far still count, and the result says it timed out)."""
    tasks = [asyncio.create_task(run) for run in runs]
    _, pending = await asyncio.wait(tasks, timeout=RUN_LIMIT_S)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return not pending


async def kafka_floor(
    streams: int, tokens_per_s: float, seconds: float, *, acks: int | str = 1
) -> dict[str, Any]:
    """Raw aiokafka produce-to-consume latency on the same broker: the same record sizes
    and rate as ``streams`` streams at ``tokens_per_s``, one key per stream. ``acks=1``
    with a 2 ms linger is the stream topic's producer; ``acks="all"`` (idempotent, no
    linger) is the commands' producer."""
    topic = f"bench-floor-{uuid.uuid4().hex[:8]}"
    if acks == "all":
        producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all", enable_idempotence=True)
    else:
        producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks=acks, linger_ms=2)
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=KAFKA, auto_offset_reset="latest", fetch_max_wait_ms=20
    )
    await producer.start()
    await producer.send_and_wait(topic, b"warm-up")  # creates the topic
    await consumer.start()
    await asyncio.sleep(1)
    samples: list[float] = []
    padding = "x" * 200  # about the size of a delta event
    done = asyncio.Event()

    async def consume() -> None:
        while not done.is_set():
            for records in (await consumer.getmany(timeout_ms=100)).values():
                now = time.time() * 1000
                for r in records:
                    if r.value != b"warm-up":
                        samples.append(now - orjson.loads(r.value)["t"])

    async def produce(key: int) -> None:
        interval = 1 / tokens_per_s
        deadline = time.monotonic() + seconds
        await asyncio.sleep(random.random() * interval)
        while time.monotonic() < deadline:
            value = orjson.dumps({"t": time.time() * 1000, "p": padding})
            await producer.send(topic, value, key=str(key).encode())
            await asyncio.sleep(interval)

    reader = asyncio.create_task(consume())
    meter = CpuMeter({})
    meter.start()
    try:
        await asyncio.gather(*(produce(k) for k in range(streams)))
        await producer.flush()
        await asyncio.sleep(1)
    finally:
        done.set()
        await reader
        cpu = meter.stop()
        await producer.stop()
        await consumer.stop()
    per_record = {role: round(sec * 1000 / max(1, len(samples)), 3) for role, sec in cpu.items()}
    return {
        "streams": streams,
        "rate": round(streams * tokens_per_s),
        "acks": acks,
        "cpu_s": cpu,
        "cpu_ms_per_record": per_record,
    } | percentiles(samples)


async def direct_baseline(gemini_base: str, streams: int, words: int) -> dict[str, Any]:
    """The provider streamed straight to a socket, no bus: our gemini provider against the
    same fake, each piece sent on a WebSocket as it arrives, served by a process of its
    own (``benchmarks.direct``) so the client here does not share its loop."""
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.direct",
        gemini_base,
        str(port),
        stdout=asyncio.subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if not k.startswith("AMPLIFY_")},
    )
    samples: list[float] = []
    try:
        assert server.stdout is not None
        async with asyncio.timeout(60):
            if (await server.stdout.readline()).strip() != b"ready":
                raise RuntimeError("the direct baseline's server did not start")
        cpu_before = cpu_seconds(server.pid)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

            async def one(i: int) -> None:
                async with session.ws_connect(f"http://127.0.0.1:{port}/direct") as ws:
                    await ws.send_json({"text": story(words, i)})
                    async for msg in ws:
                        if msg.type != aiohttp.WSMsgType.TEXT:
                            break
                        piece = orjson.loads(msg.data)
                        latency = time.time() * 1000 - piece["at_ms"]
                        samples.extend([latency] * max(1, len(piece["text"].split())))

            timed_out = not await _bounded(one(i) for i in range(streams))
        server_cpu = round(cpu_seconds(server.pid) - cpu_before, 2)
    finally:
        if server.returncode is None:
            server.terminate()
        await server.wait()
    return {"streams": streams, "timed_out": timed_out, "server_cpu_s": server_cpu} | (
        percentiles(samples)
    )


async def first_audio(stack: Stack, words: int) -> dict[str, Any]:
    """From submit to the first audio.chunk, and to enhancement.completed, for one story."""
    async with aiohttp.ClientSession() as session:
        token = await stack.token(session, f"bench{uuid.uuid4().hex[:8]}")
        marks: dict[str, float] = {}
        started = time.monotonic()
        async with session.ws_connect(
            stack.ws_url, headers={"Authorization": f"Bearer {token}"}
        ) as ws:
            await ws.send_json({"type": "story.submit", "text": story(words, 7)})
            async with asyncio.timeout(240):
                async for msg in ws:
                    kind = orjson.loads(msg.data)["type"]
                    marks.setdefault(kind, (time.monotonic() - started) * 1000)
                    if kind == "story.completed":
                        break
    return {
        "words": words,
        "first_audio_ms": round(marks["audio.chunk"]),
        "rewrite_done_ms": round(marks["enhancement.completed"]),
        "story_done_ms": round(marks["story.completed"]),
    }


async def suggestion_timing(stack: Stack, words: int) -> dict[str, Any]:
    """For one story without narration: when its suggestions reach the client (the first
    and the last), against when the rewrite's last delta does."""
    async with aiohttp.ClientSession() as session:
        token = await stack.token(session, f"bench{uuid.uuid4().hex[:8]}")
        suggestions: list[float] = []
        marks: dict[str, float] = {}
        started = time.monotonic()
        async with session.ws_connect(
            stack.ws_url, headers={"Authorization": f"Bearer {token}"}
        ) as ws:
            text = craft_story(words)
            await ws.send_json({"type": "story.submit", "text": text, "audio": False})
            async with asyncio.timeout(240):
                async for msg in ws:
                    kind = orjson.loads(msg.data)["type"]
                    at = (time.monotonic() - started) * 1000
                    if kind == "suggestion":
                        suggestions.append(at)
                    marks[kind] = at  # the last of each kind
                    marks.setdefault(f"first {kind}", at)
                    if kind == "story.completed":
                        break
    return {
        "words": len(text.split()),
        "suggestions": len(suggestions),
        "first_suggestion_ms": round(suggestions[0]) if suggestions else None,
        "last_suggestion_ms": round(suggestions[-1]) if suggestions else None,
        "first_delta_ms": round(marks["first enhancement.delta"]),
        "rewrite_end_ms": round(marks["enhancement.delta"]),
        "completed_ms": round(marks["enhancement.completed"]),
    }


async def idle_socket_memory(stack: Stack, sockets: int) -> dict[str, Any]:
    """Gateway RSS growth per idle, authenticated WebSocket."""
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        token = await stack.token(session, f"bench{uuid.uuid4().hex[:8]}")
        headers = {"Authorization": f"Bearer {token}"}
        await asyncio.sleep(1)
        before = rss_kib(stack.gateway_pid)
        opened: list[aiohttp.ClientWebSocketResponse] = []
        try:
            for start in range(0, sockets, 250):
                batch = await asyncio.gather(
                    *(
                        session.ws_connect(stack.ws_url, headers=headers, heartbeat=None)
                        for _ in range(min(250, sockets - start))
                    )
                )
                opened.extend(batch)
            await asyncio.sleep(2)
            after = rss_kib(stack.gateway_pid)
        finally:
            await asyncio.gather(*(ws.close() for ws in opened), return_exceptions=True)
    return {
        "sockets": len(opened),
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_socket": round((after - before) / max(1, len(opened)), 2),
    }


async def submit_latency(
    stack: Stack, rate: float, seconds: float, users: int = 50
) -> dict[str, Any]:
    """``POST /v1/stories`` (202) latency with requests started at a steady rate
    (open loop: a slow answer does not slow the arrivals), spread round-robin over
    ``users`` accounts: the rate is the service's, not one user's (the gateway admits
    one submission of a user at a time, so one user would only measure that queue)."""
    samples: list[float] = []
    statuses: dict[int, int] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        run = uuid.uuid4().hex[:6]
        tokens = await asyncio.gather(
            *(stack.token(session, f"bench{run}u{n}") for n in range(users))
        )
        headers = [{"Authorization": f"Bearer {token}"} for token in tokens]
        body = {"text": story(12), "audio": False}

        async def one(i: int) -> None:
            began = time.monotonic()
            async with session.post(
                f"{stack.base}/v1/stories", json=body, headers=headers[i % users]
            ) as res:
                await res.read()
                statuses[res.status] = statuses.get(res.status, 0) + 1
            samples.append((time.monotonic() - began) * 1000)

        tasks = []
        meter = CpuMeter(stack.pids)
        meter.start()
        began = time.monotonic()
        for i in range(int(rate * seconds)):
            delay = began + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        cpu = meter.stop()
    return {
        "rate": rate,
        "seconds": seconds,
        "users": users,
        "statuses": statuses,
        "answered_in_s": round(time.monotonic() - began, 1),
        "cpu_s": cpu,
    } | percentiles(samples)
