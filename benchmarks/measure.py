"""The measurements: added token latency through the service and its two baselines, time
to first audio, memory per idle socket, submission latency under a steady rate, and
stories followed from submit to completion at a steady rate (their CPU each).

CPU is counted by process over a measured window, less each process's idle rate measured
just before it (``idle_cpu``): what the load cost, not what the processes spend anyway."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from amplify_stream.bus.kafka_topics import delete_topics
from amplify_stream.config.groups import BusSettings
from benchmarks.stack import KAFKA, CpuMeter, Stack, cpu_seconds, free_port, rss_kib

# One concurrency level may take this long; a machine that cannot keep up says so.
RUN_LIMIT_S = 75.0
# The idle rate of each process, measured over this long before a measured window.
IDLE_S = 3.0
# Reported apart from the pipeline's CPU: the fake provider, the load client (this
# process) and the rest of the machine. The pipeline is every other process measured:
# gateway, workers and the broker.
APART = ("fake-gemini", "client", "others")

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


@dataclass(frozen=True)
class Idle:
    """CPU seconds per second of each process with no load."""

    rates: dict[str, float]
    seconds: float

    def net(self, spent: dict[str, float], seconds: float) -> dict[str, float]:
        """``spent`` over ``seconds`` less what each process spends idle in that time."""
        return {
            role: round(max(0.0, cpu - self.rates.get(role, 0.0) * seconds), 3)
            for role, cpu in spent.items()
        }


async def idle_cpu(pids: dict[str, int], seconds: float = IDLE_S) -> Idle:
    """Each process's CPU rate over ``seconds`` of no load (``pids``, the broker, this
    client and the rest of the machine, as ``CpuMeter`` counts them)."""
    meter = CpuMeter(pids)
    meter.start()
    began = time.monotonic()
    await asyncio.sleep(seconds)
    spent = meter.stop()
    took = time.monotonic() - began
    return Idle({role: cpu / took for role, cpu in spent.items()}, round(took, 1))


class Window:
    """CPU by process from ``start`` to ``stop``, and the same less the idle rates."""

    def __init__(self, pids: dict[str, int], idle: Idle | None) -> None:
        self._meter = CpuMeter(pids)
        self._idle = idle
        self._began = 0.0

    def start(self) -> None:
        self._meter.start()
        self._began = time.monotonic()

    def stop(self) -> dict[str, Any]:
        spent = self._meter.stop()
        seconds = time.monotonic() - self._began
        net = self._idle.net(spent, seconds) if self._idle else spent
        return {
            "seconds": round(seconds, 2),
            "cpu_s": spent,
            "net_cpu_s": net,
            "idle_cpu_per_s": (
                {role: round(rate, 4) for role, rate in self._idle.rates.items()}
                if self._idle
                else {}
            ),
        }


def per_unit(net: dict[str, float], units: int) -> dict[str, float]:
    """CPU milliseconds per unit of work by process."""
    return {role: round(cpu * 1000 / max(1, units), 3) for role, cpu in net.items()}


def pipeline(by_role: dict[str, float]) -> float:
    """The pipeline's part: every process but those reported apart (``APART``)."""
    return round(sum(v for role, v in by_role.items() if role not in APART), 3)


async def service_token_latency(
    stack: Stack, streams: int, words: int, idle: Idle | None = None
) -> dict[str, Any]:
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

        meter = Window(stack.pids, idle)
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
        # CPU by process (the broker's and other work's too), less each one's idle rate:
        # the cost, where latency on a shared 2-core machine only says whether it kept up.
        "cpu_s": cpu["cpu_s"],
        "cpu": cpu,
        "cpu_ms_per_word": (per_word := per_unit(cpu["net_cpu_s"], received_words)),
        "pipeline_ms_per_word": pipeline(per_word),
        # Per delta record relayed: the unit of the raw round trip's CPU per record.
        "cpu_ms_per_record": (per_record := per_unit(cpu["net_cpu_s"], deltas)),
        "pipeline_ms_per_record": pipeline(per_record),
    } | percentiles(samples)


async def held_streams_latency(
    stack: Stack,
    streams: int,
    words: int,
    ramp_s: float,
    tokens_per_s: float,
    *,
    idle: Idle | None = None,
    limit_s: float = RUN_LIMIT_S,
) -> dict[str, Any]:
    """Added latency while ``streams`` streams are held at once: they start one after
    another over ``ramp_s`` (so their start-up work is spread, as arrivals are), each long
    enough to outlast the ramp, and only what arrives while all of them stream counts
    (from the last start plus a second, to the earliest end less a second). The CPU of
    that window, per word received in it, is the steady cost of relaying a word."""
    samples: list[tuple[float, float, int]] = []  # (received, latency, words)
    others: list[float] = []  # when each record but a delta was received
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
                        continue
                    others.append(received)
                    if event["type"] == "story.completed":
                        finished += 1
                        return

        window = (began + (ramp_s + 1) * 1000, began + (stream_s - 1) * 1000)

        async def in_window() -> dict[str, Any]:
            await asyncio.sleep(max(0.0, window[0] / 1000 - time.time()))
            meter = Window(stack.pids, idle)
            meter.start()
            await asyncio.sleep(max(0.0, window[1] / 1000 - time.time()))
            return meter.stop()

        whole = Window(stack.pids, idle)
        whole.start()
        steady = asyncio.create_task(in_window())
        timed_out = not await _bounded((one(i) for i in range(streams)), limit_s)
        cpu = whole.stop()
        window_cpu = await steady
    held = [lat for at, lat, n in samples if window[0] <= at <= window[1] for _ in range(n)]
    window_words = sum(n for at, _, n in samples if window[0] <= at <= window[1])
    # Each delta is one record on the stream topic, relayed as one frame: the unit the raw
    # round trip's CPU per record compares with (the other records relayed meanwhile,
    # the analysis' suggestions and insights, are counted apart and their CPU stays in).
    window_deltas = sum(1 for at, _, _ in samples if window[0] <= at <= window[1])
    window_others = sum(1 for at in others if window[0] <= at <= window[1])
    return {
        "streams": streams,
        "finished": finished,
        "timed_out": timed_out,
        "ramp_s": ramp_s,
        "window_s": round((window[1] - window[0]) / 1000, 1),
        "cpu_s": cpu["cpu_s"],
        "cpu": cpu,
        # The steady cost: CPU while all stream, per word received meanwhile.
        "window_words": window_words,
        "window_cpu": window_cpu,
        "cpu_ms_per_word": (per_word := per_unit(window_cpu["net_cpu_s"], window_words)),
        "pipeline_ms_per_word": pipeline(per_word),
        # The same CPU per delta record relayed (like for like with the raw per record).
        "window_deltas": window_deltas,
        "window_other_records": window_others,
        "cpu_ms_per_record": (per_record := per_unit(window_cpu["net_cpu_s"], window_deltas)),
        "pipeline_ms_per_record": pipeline(per_record),
    } | percentiles(held)


async def _bounded(runs: Iterable[Coroutine[Any, Any, None]], limit_s: float = RUN_LIMIT_S) -> bool:
    """Run all at once within ``limit_s``; False when the machine could not keep up
    (the samples gathered so far still count, and the result says it timed out)."""
    tasks = [asyncio.create_task(run) for run in runs]
    _, pending = await asyncio.wait(tasks, timeout=limit_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return not pending


async def kafka_floor(
    streams: int,
    tokens_per_s: float,
    seconds: float,
    *,
    linger_ms: int = 2,
    idle_s: float = IDLE_S,
) -> dict[str, Any]:
    """Raw aiokafka produce-to-consume latency on the same broker: the same record sizes
    and rate as ``streams`` streams at ``tokens_per_s``, one key per stream, acks=all and
    idempotent as every producer of the service. A 2 ms linger is the stream topic's
    producer; none (``linger_ms=0``) is the commands' producer. Its CPU per record, this
    client's (producer and consumer) and the broker's, each less its idle rate with both
    clients started: the raw cost the service's CPU per relayed record compares with."""
    topic = f"bench-floor-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(
        bootstrap_servers=KAFKA, acks="all", enable_idempotence=True, linger_ms=linger_ms
    )
    # The service's fetch wait (its default setting), so that both poll alike when idle.
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=KAFKA,
        auto_offset_reset="latest",
        fetch_max_wait_ms=BusSettings().kafka_fetch_max_wait_ms,
    )
    await producer.start()
    await producer.send_and_wait(topic, b"warm-up")  # creates the topic
    await consumer.start()
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
    try:
        await asyncio.sleep(1)
        idle = await idle_cpu({}, idle_s)
        meter = Window({}, idle)
        meter.start()
        await asyncio.gather(*(produce(k) for k in range(streams)))
        await producer.flush()
        await asyncio.sleep(1)
        cpu = meter.stop()
    finally:
        done.set()
        await reader
        await producer.stop()
        await consumer.stop()
        await delete_topics(KAFKA, topic)
    per_record = per_unit(cpu["net_cpu_s"], len(samples))
    return {
        "streams": streams,
        "rate": round(streams * tokens_per_s),
        "acks": "all",
        "linger_ms": linger_ms,
        "cpu_s": cpu["cpu_s"],
        "cpu": cpu,
        "cpu_ms_per_record": per_record,
        # The raw cost of a record: the client's (producing and consuming it) and the
        # broker's, idle subtracted.
        "raw_ms_per_record": round(per_record["client"] + per_record.get("kafka", 0.0), 3),
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


async def stack_idle(stack: Stack, seconds: float) -> dict[str, Any]:
    """The CPU of the whole stack with no load: gateway, workers and the broker (the
    fake provider and this client apart), in cores."""
    idle = await idle_cpu(stack.pids, seconds)
    cores = {role: round(rate, 4) for role, rate in idle.rates.items()}
    return {"seconds": idle.seconds, "cores": cores, "pipeline_cores": pipeline(cores)}


async def story_rate(
    stack: Stack,
    rate: float,
    seconds: float,
    words: int,
    *,
    users: int = 20,
    idle: Idle | None = None,
    drain_s: float = 15.0,
) -> dict[str, Any]:
    """Stories of ``words`` words submitted at a steady rate (open loop) on one socket
    each of ``users`` accounts, round-robin, each followed to its ``story.completed``
    (without narration). Per story: submit to completed; CPU per story by process, from
    the first submission to the last completion (or ``drain_s`` after the last
    submission), less the idle rates."""
    sent: dict[str, float] = {}  # request id -> monotonic ms
    story_of: dict[str, str] = {}  # story id -> request id
    done: dict[str, float] = {}  # request id -> monotonic ms
    statuses: Counter[str] = Counter()
    total = int(rate * seconds)
    all_done = asyncio.Event()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        run = uuid.uuid4().hex[:6]
        tokens = await asyncio.gather(
            *(stack.token(session, f"bench{run}r{n}") for n in range(users))
        )
        sockets = await asyncio.gather(
            *(
                session.ws_connect(stack.ws_url, headers={"Authorization": f"Bearer {t}"})
                for t in tokens
            )
        )

        async def read(ws: aiohttp.ClientWebSocketResponse) -> None:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                event = orjson.loads(msg.data)
                kind = event["type"]
                if kind == "story.accepted":
                    story_of[event["story_id"]] = event["request_id"]
                elif kind == "error":
                    statuses[f"error {event.get('code')}"] += 1
                elif kind == "story.completed" and event["story_id"] in story_of:
                    done[story_of[event["story_id"]]] = time.monotonic() * 1000
                    statuses[event["status"]] += 1
                    if len(done) == total:
                        all_done.set()

        readers = [asyncio.create_task(read(ws)) for ws in sockets]
        meter = Window(stack.pids, idle)
        try:
            meter.start()
            began = time.monotonic()
            for i in range(total):
                if (delay := began + i / rate - time.monotonic()) > 0:
                    await asyncio.sleep(delay)
                sent[str(i)] = time.monotonic() * 1000
                text = story(words, i)
                frame = {"type": "story.submit", "text": text, "audio": False, "request_id": str(i)}
                await sockets[i % users].send_str(orjson.dumps(frame).decode())
            submitted_s = time.monotonic() - began
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(drain_s):
                    await all_done.wait()
            cpu = meter.stop()
        finally:
            for ws in sockets:
                await ws.close()
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
    lags = [done[rid] - at for rid, at in sent.items() if rid in done]
    # A queue that grows: the lag of the last quarter's submissions over the first's.
    quarter = max(1, total // 4)
    first = [done[str(i)] - sent[str(i)] for i in range(quarter) if str(i) in done]
    last = [done[str(i)] - sent[str(i)] for i in range(total - quarter, total) if str(i) in done]
    growth = None
    if first and last:
        growth = round(percentiles(last)["p50"] - percentiles(first)["p50"], 1)
    # The last completion: how long the service took to finish what it was given; and the
    # pace of completions, from the first to the last (a story's own time left out).
    finished_s = (max(done.values()) / 1000 - began) if done else None
    spread_s = (max(done.values()) - min(done.values())) / 1000 if len(done) > 1 else 0.0
    per_story = per_unit(cpu["net_cpu_s"], len(done))
    return {
        "rate": rate,
        "seconds": seconds,
        "words": words,
        "users": users,
        "stories": total,
        "completed": len(done),
        "statuses": dict(statuses),
        "submitted_in_s": round(submitted_s, 2),
        "finished_in_s": round(finished_s, 2) if finished_s is not None else None,
        "completions_per_s": round((len(done) - 1) / spread_s, 1) if spread_s else 0.0,
        "lag_ms": percentiles(lags),
        "lag_growth_ms": growth,
        "cpu": cpu,
        "cpu_ms_per_story": per_story,
        "pipeline_ms_per_story": pipeline(per_story),
    }
