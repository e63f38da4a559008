"""The live documents figure (docs/protocol.md section 6): many writers typing into their
documents at once, key by key, on the Kafka stack with the local analyzer.

Each writer is a user of its own with one WebSocket and one document, opened with two
paragraphs of text. After the documents are open and analyzed, the service's idle CPU
is measured; then every writer types sentences at the end of its document at
``KEYS_PER_S``, one ``doc.edit`` a key, in bursts of ``WORDS_PER_BURST`` words with a
pause of ``PAUSE_S`` (longer than the idle time) after each, so that every burst gets its
analysis pass. Measured per key: from sending its ``doc.edit`` to receiving its
``doc.ack``; per burst: from sending its last key to receiving ``doc.analyzed`` for that
version, less the idle time the service waits before a pass (``doc_idle_ms``). A burst
whose pass was superseded (its ``doc.analyzed`` never came) is counted, not sampled.

The writers run in this process (asyncio); its CPU, and how late its event loop ran,
are reported beside the service's, since a late client loop delays both timestamps.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from amplify_stream.client.live import Frame, LiveDocument
from amplify_stream.text.edits import Change, utf16_length
from benchmarks.measure import CRAFT_SENTENCES, percentiles
from benchmarks.stack import CpuMeter, Stack

WRITERS = 200
KEYS_PER_S = 5.0
WORDS_PER_BURST = 2
# From a burst's last key to the next burst's first: longer than doc_idle_ms (300).
PAUSE_S = 0.6
TYPING_S = 25.0
IDLE_BASELINE_S = 5.0
# After the typing, how long the last bursts' passes may take to arrive.
SETTLE_S = 15.0
OPEN_BATCH = 25


def opening_text(i: int) -> str:
    """Two paragraphs of sentences an editor has something to say about."""
    n = len(CRAFT_SENTENCES)
    first = " ".join(CRAFT_SENTENCES[(i + k) % n] for k in range(4))
    second = " ".join(CRAFT_SENTENCES[(i + 4 + k) % n] for k in range(3))
    return f"{first}\n{second}"


def typed_words(i: int) -> list[str]:
    """What writer ``i`` types, word by word: more sentences than the run has time for."""
    n = len(CRAFT_SENTENCES)
    return " ".join(CRAFT_SENTENCES[(i + 3 + k) % n] for k in range(2 * n)).split(" ")


@dataclass
class _Writer:
    i: int
    ws: aiohttp.ClientWebSocketResponse
    doc: LiveDocument | None = None
    # Monotonic milliseconds, by version.
    sent: dict[int, float] = field(default_factory=dict)
    acked: dict[int, float] = field(default_factory=dict)
    analyzed: dict[int, float] = field(default_factory=dict)
    burst_ends: list[int] = field(default_factory=list)
    errors: list[Frame] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def read(self) -> None:
        async for msg in self.ws:
            now = time.monotonic() * 1000
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            frame = orjson.loads(msg.data)
            kind = frame["type"]
            if kind == "doc.opened":
                self.doc = LiveDocument.opened(frame)
            elif self.doc is not None and frame.get("doc_id") == self.doc.doc_id:
                self.doc.receive(frame)
                if kind == "doc.ack":
                    self.acked.setdefault(frame["version"], now)
                elif kind == "doc.analyzed":
                    self.analyzed.setdefault(frame["version"], now)
            if kind == "error":
                self.errors.append(frame)
            self.changed.set()

    async def until(self, condition: Callable[[], object], within_s: float) -> bool:
        try:
            async with asyncio.timeout(within_s):
                while not condition():
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            return False
        return True

    async def open(self) -> None:
        await self.ws.send_str(
            orjson.dumps(
                {"type": "doc.open", "text": opening_text(self.i), "title": f"bench {self.i}"}
            ).decode()
        )
        opened = await self.until(
            lambda: (self.doc is not None and 0 in self.analyzed) or self.errors, 60
        )
        if not opened or self.errors:
            raise RuntimeError(f"writer {self.i}: document not opened: {self.errors}")

    async def type(self, began: float, deadline: float, rng: random.Random) -> None:
        """Key by key at ``KEYS_PER_S`` from a jittered start, by absolute schedule (a
        late loop sends the keys it owes at once rather than typing slower); a pause
        after every ``WORDS_PER_BURST`` words; stops at a burst's end past ``deadline``."""
        doc = self.doc
        assert doc is not None
        interval = 1 / KEYS_PER_S
        at = began + rng.random()  # keys of different writers do not align
        offset = utf16_length(doc.text)
        words = typed_words(self.i)
        for n, word in enumerate(words):
            for key in word if n == 0 else " " + word:
                if (delay := at - time.monotonic()) > 0:
                    await asyncio.sleep(delay)
                frame = doc.edit([Change(offset, offset, key)])
                offset += utf16_length(key)
                self.sent[doc.version] = time.monotonic() * 1000
                await self.ws.send_str(orjson.dumps(frame).decode())
                at += interval
            if (n + 1) % WORDS_PER_BURST == 0 or n == len(words) - 1:
                self.burst_ends.append(doc.version)
                at += PAUSE_S - interval
                if at >= deadline:
                    return

    async def settle(self) -> None:
        """Until the last edit is acknowledged and its pass has come (or ``SETTLE_S``)."""
        doc = self.doc
        assert doc is not None
        last = doc.version
        await self.until(lambda: last in self.acked and last in self.analyzed, SETTLE_S)


async def _lag_monitor(samples: list[float], period: float = 0.05) -> None:
    """How late this process's event loop wakes up (ms): the client's own delay."""
    while True:
        before = time.monotonic()
        await asyncio.sleep(period)
        samples.append((time.monotonic() - before - period) * 1000)


async def typing_latency(stack: Stack, writers: int = WRITERS) -> dict[str, Any]:
    idle_ms = int(stack.env.get("AMPLIFY_DOC_IDLE_MS", "300"))
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        run = uuid.uuid4().hex[:6]
        tokens: list[str] = []
        for start in range(0, writers, OPEN_BATCH):
            tokens += await asyncio.gather(
                *(
                    stack.token(session, f"doc{run}u{n}")
                    for n in range(start, min(writers, start + OPEN_BATCH))
                )
            )
        sockets = []
        for start in range(0, writers, OPEN_BATCH):
            sockets += await asyncio.gather(
                *(
                    session.ws_connect(
                        stack.ws_url, headers={"Authorization": f"Bearer {tokens[n]}"}
                    )
                    for n in range(start, min(writers, start + OPEN_BATCH))
                )
            )
        ws_writers = [_Writer(n, ws) for n, ws in enumerate(sockets)]
        readers = [asyncio.create_task(w.read()) for w in ws_writers]
        lag: list[float] = []
        monitor = asyncio.create_task(_lag_monitor(lag))
        try:
            for start in range(0, writers, OPEN_BATCH):
                await asyncio.gather(*(w.open() for w in ws_writers[start : start + OPEN_BATCH]))
            await asyncio.sleep(1)
            # The service's CPU with every document open and nobody typing.
            meter = CpuMeter(stack.pids)
            meter.start()
            idle_began = time.monotonic()
            await asyncio.sleep(IDLE_BASELINE_S)
            idle = meter.stop()
            idle_s = time.monotonic() - idle_began
            lag.clear()
            rng = random.Random(7)
            meter = CpuMeter(stack.pids)
            meter.start()
            began = time.monotonic()
            deadline = began + TYPING_S
            await asyncio.gather(*(w.type(began, deadline, rng) for w in ws_writers))
            typed_s = time.monotonic() - began
            await asyncio.gather(*(w.settle() for w in ws_writers))
            cpu = meter.stop()
            run_s = time.monotonic() - began
        finally:
            monitor.cancel()
            for ws in sockets:
                await ws.close()
            for task in readers:
                task.cancel()
            await asyncio.gather(monitor, *readers, return_exceptions=True)

    acks: list[float] = []
    # Per 5 s of the run by send time: steady queueing, or a backlog that grows.
    windows: dict[int, list[float]] = {}
    began_ms = began * 1000
    analyzed: list[float] = []
    edits = unacked = superseded = passes = 0
    errors: Counter[str] = Counter()
    for w in ws_writers:
        edits += len(w.sent)
        for version, sent in w.sent.items():
            if version in w.acked:
                acks.append(w.acked[version] - sent)
                windows.setdefault(int((sent - began_ms) // 5000), []).append(acks[-1])
            else:
                unacked += 1
        for version in w.burst_ends:
            if version in w.analyzed:
                analyzed.append(w.analyzed[version] - w.sent[version] - idle_ms)
            else:
                superseded += 1
        passes += sum(1 for v in w.analyzed if v > 0)
        errors.update(str(e.get("code")) for e in w.errors)
    # CPU per edit: the run's less the idle baseline's rate over the run's length.
    net = {
        role: round(max(0.0, spent - idle.get(role, 0.0) * run_s / idle_s), 2)
        for role, spent in cpu.items()
    }
    per_edit = {role: round(s * 1000 / max(1, edits), 3) for role, s in net.items()}
    service = round(per_edit.get("gateway", 0.0) + per_edit.get("documents", 0.0), 3)
    return {
        "writers": writers,
        "keys_per_s": KEYS_PER_S,
        "words_per_burst": WORDS_PER_BURST,
        "pause_ms": round(PAUSE_S * 1000),
        "idle_ms": idle_ms,
        "typing_s": round(typed_s, 1),
        "run_s": round(run_s, 1),
        "edits": edits,
        "edits_per_s": round(edits / typed_s, 1),
        "unacked": unacked,
        "errors": dict(errors),
        "ack_ms": percentiles(acks),
        "ack_p99_ms_by_5s": [percentiles(windows[k]).get("p99") for k in sorted(windows)],
        "bursts": len(analyzed) + superseded,
        "superseded": superseded,
        "passes": passes,
        # Last key sent to its version's doc.analyzed received, less the idle time.
        "analyzed_after_idle_ms": percentiles(analyzed),
        "cpu_s": cpu,
        "idle_cpu_s": idle | {"seconds": round(idle_s, 1)},
        "cpu_ms_per_edit": per_edit,
        "service_cpu_ms_per_edit": service,
        "client_loop_lag_ms": percentiles(lag) | {"max": round(max(lag, default=0.0), 1)},
        # Cores busy with work that is none of the stack's, the broker's or the client's
        # (the machine is shared): what the figure had to share the 2 cores with.
        "other_work_cores": {
            "idle": round(idle.get("others", 0.0) / idle_s, 2),
            "run": round(cpu.get("others", 0.0) / run_s, 2),
        },
    }
