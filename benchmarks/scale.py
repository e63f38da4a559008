"""``scale_gateways`` (issue 24): gateways as separate processes on the real broker.

At 1 and at 4 gateways, with the same load per gateway (``STREAMS_PER_GATEWAY`` stories,
each client on its own gateway, as a load balancer spreads sockets):
- the records all gateways' relays read (their ``amplify_relay_records_read``) over the
  records the stream topic gained (its end offsets): 1.0 when each gateway reads only
  its home slice; before issue 24 every gateway read every record (4.0 with four);
- the gateways' CPU per relayed word (each process's CPU less its idle rate, measured
  just before).
Then, at 4 gateways, resuming finished stories from their first event on the gateway
that accepted them (home) and on one that does not read their partition (away: its
relay starts reading it, then the history), alternately; each replay is checked against
what the story's first client heard: nothing lost or repeated.
Then one user through 3 gateways gets exactly the limit (``benchmarks/scale_limits.py``),
and a documents owner with 50,000 documents opened, with eviction and without it (the
owner before issue 24), in the same run (``benchmarks/owner_memory.py``).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from amplify_stream.bus import create_bus
from amplify_stream.config.groups import BusSettings
from benchmarks import measure
from benchmarks.owner_memory import owner_memory
from benchmarks.scale_limits import scale_limits
from benchmarks.stack import KAFKA, Stack, metric_samples, running_stack

LEVELS = (1, 4)
STREAMS_PER_GATEWAY = 16
WORDS = 240
TOKENS_PER_S = 30.0
TOKENS_PER_CHUNK = 8
STREAM_PARTITIONS = 16
# Short, so each away resume finds its partition unread (the service's default is 30 s).
LINGER_S = 1.0
RESUME_SAMPLES = 10
IDLE_S = 3.0
OWNER_DOCUMENTS = 50_000
OWNER_DOCUMENTS_QUICK = 10_000
# An eviction time no run reaches: the owner as it was before issue 24.
EVICTION_OFF_S = 3600.0


@dataclass
class Story:
    gateway: int
    story_id: str = ""
    partition: int = -1
    cursors: list[str] = field(default_factory=list)
    words: int = 0


async def _metric(session: aiohttp.ClientSession, base: str, name: str, **labels: str) -> float:
    found = [
        sample.value
        for sample in await metric_samples(session, f"{base}/metrics", name)
        if sample.name == name and sample.labels == labels
    ]
    if len(found) != 1:
        raise RuntimeError(f"{base}/metrics has no {name}{labels or ''}")
    return found[0]


async def _records_read(session: aiohttp.ClientSession, stack: Stack) -> float:
    return sum(
        [await _metric(session, base, "amplify_relay_records_read_total") for base in stack.bases]
    )


async def _stream_end(stack: Stack) -> int:
    bus = create_bus(BusSettings(bus="kafka", kafka_bootstrap_servers=KAFKA))
    await bus.start()
    try:
        ends = await bus.end_offsets(f"{stack.env['AMPLIFY_TOPIC_PREFIX']}.stream.v1")
    finally:
        await bus.close()
    return sum(ends.values())


async def _settled(session: aiohttp.ClientSession, stack: Stack) -> None:
    """Until the gateways' home slices cover the stream topic, each partition once."""
    async with asyncio.timeout(60):
        while True:
            homes = [
                await _metric(session, base, "amplify_relay_partitions", kind="home")
                for base in stack.bases
            ]
            if sum(homes) == STREAM_PARTITIONS:
                return
            await asyncio.sleep(0.2)


async def _one(
    session: aiohttp.ClientSession, stack: Stack, headers: dict[str, str], story: Story, seed: int
) -> None:
    url = stack.bases[story.gateway].replace("http", "ws", 1) + "/v1/stream"
    async with session.ws_connect(url, headers=headers) as ws:
        text = measure.story(WORDS, seed)
        await ws.send_json({"type": "story.submit", "text": text, "audio": False})
        async for msg in ws:
            event = orjson.loads(msg.data)
            if event["type"] == "story.accepted":
                story.story_id = event["story_id"]
                continue
            story.cursors.append(event["cursor"])
            if event["type"] == "enhancement.delta":
                story.words += max(1, len(event["text"].split()))
            elif event["type"] == "story.completed":
                return


async def _load(stack: Stack, gateways: int) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        await _settled(session, stack)
        token = await stack.token(session, f"bench{uuid.uuid4().hex[:8]}")
        headers = {"Authorization": f"Bearer {token}"}
        pids = {f"gateway{n}": pid for n, pid in enumerate(stack.gateway_pids)}
        idle = await measure.idle_cpu(pids, IDLE_S)
        stories = [Story(n % gateways) for n in range(gateways * STREAMS_PER_GATEWAY)]
        read_before, end_before = await _records_read(session, stack), await _stream_end(stack)
        window = measure.Window(pids, idle)
        window.start()
        async with asyncio.timeout(120):
            await asyncio.gather(
                *(_one(session, stack, headers, s, n) for n, s in enumerate(stories))
            )
        cpu = window.stop()
        read = await _records_read(session, stack) - read_before
        produced = await _stream_end(stack) - end_before
        for story in stories:
            story.partition = int(story.cursors[0].split("-")[0])
        words = sum(s.words for s in stories)
        gateway_cpu = sum(cpu["net_cpu_s"][f"gateway{n}"] for n in range(gateways))
        level: dict[str, Any] = {
            "gateways": gateways,
            "streams": len(stories),
            "completed": sum(1 for s in stories if s.cursors),
            "words": words,
            "records_produced": produced,
            "records_read": read,
            "read_per_produced": round(read / max(1, produced), 3),
            "gateway_cpu_s": round(gateway_cpu, 3),
            "gateway_cpu_ms_per_word": round(gateway_cpu * 1000 / max(1, words), 4),
            "cpu": cpu,
        }
        if gateways > 1:
            level["resume"] = await _resumes(session, stack, headers, stories)
    return level


async def _replay(
    session: aiohttp.ClientSession, base: str, headers: dict[str, str], story: Story
) -> tuple[float, list[str]]:
    """From sending ``story.resume`` to ``story.completed``, and the cursors heard."""
    url = base.replace("http", "ws", 1) + "/v1/stream"
    cursors: list[str] = []
    async with session.ws_connect(url, headers=headers) as ws:
        began = time.perf_counter()
        await ws.send_json({"type": "story.resume", "story_id": story.story_id})
        async for msg in ws:
            event = orjson.loads(msg.data)
            if "cursor" in event:
                cursors.append(event["cursor"])
            if event["type"] == "story.completed":
                return (time.perf_counter() - began) * 1000, cursors
    raise RuntimeError(f"the replay of {story.story_id} ended early")


async def _resumes(
    session: aiohttp.ClientSession, stack: Stack, headers: dict[str, str], stories: list[Story]
) -> dict[str, Any]:
    gateways = len(stack.bases)
    home_ms: list[float] = []
    away_ms: list[float] = []
    wrong = 0
    for n, story in enumerate(stories[:RESUME_SAMPLES]):
        away = (story.gateway + 1) % gateways
        # The away gateway's relay no longer reads what an earlier sample made it read.
        await asyncio.sleep(LINGER_S + 0.5)
        order = [(story.gateway, home_ms), (away, away_ms)]
        for gateway, samples in order if n % 2 == 0 else reversed(order):
            took, cursors = await _replay(session, stack.bases[gateway], headers, story)
            samples.append(took)
            wrong += cursors != story.cursors
    home, away = measure.percentiles(home_ms), measure.percentiles(away_ms)
    return {
        "samples": len(home_ms),
        "home_ms": home,
        "away_ms": away,
        "away_over_home_p50": round(away["p50"] / home["p50"], 2),
        "replays_not_matching": wrong,
    }


async def scale_gateways(quick: bool) -> dict[str, Any]:
    levels = []
    for gateways in LEVELS:
        async with running_stack(
            first_token_ms=200,
            tokens_per_s=TOKENS_PER_S,
            enhancers=2,
            gateways=gateways,
            AMPLIFY_FAKE_GEMINI_TOKENS_PER_CHUNK=str(TOKENS_PER_CHUNK),
            AMPLIFY_STREAM_PARTITIONS=str(STREAM_PARTITIONS),
            AMPLIFY_RELAY_LINGER_S=str(LINGER_S),
        ) as stack:
            levels.append(await _load(stack, gateways))
        print(orjson.dumps({k: v for k, v in levels[-1].items() if k != "cpu"}).decode())
    one, many = levels[0], levels[-1]
    # One user through 3 gateways; `make bench` (scripts/bench.sh) starts the Redis.
    redis_url = os.environ.get("AMPLIFY_TEST_REDIS_URL")
    limits: dict[str, Any] = (
        await scale_limits(redis_url=redis_url)
        if redis_url
        else {"not_run": "no Redis: scripts/redis.sh start, then AMPLIFY_TEST_REDIS_URL"}
    )
    print(orjson.dumps(limits).decode())
    documents = OWNER_DOCUMENTS_QUICK if quick else OWNER_DOCUMENTS
    owner = await owner_memory(documents)
    owner_before = await owner_memory(documents, evict_s=EVICTION_OFF_S)
    owner_before.pop("ack_ms", None)
    print(orjson.dumps(owner).decode())
    return {
        "levels": levels,
        "streams_per_gateway": STREAMS_PER_GATEWAY,
        "words": WORDS,
        "tokens_per_chunk": TOKENS_PER_CHUNK,
        "stream_partitions": STREAM_PARTITIONS,
        "read_per_produced": many["read_per_produced"],
        "cpu_per_word_ratio": round(
            many["gateway_cpu_ms_per_word"] / max(1e-9, one["gateway_cpu_ms_per_word"]), 2
        ),
        "resume": many.get("resume"),
        "limits": limits,
        "owner": owner,
        "owner_without_eviction": owner_before,
    }
