"""A bounded documents owner (issue 24, for the ``scale_gateways`` figure): one
``worker documents`` process on the real broker opens ``documents`` documents, lets them
go idle, and is measured.

- Opening: the documents' ``document.open`` commands go straight to the edit log (no
  gateway: the figure is the owner's), in ``waves`` waves, as fast as the owner folds
  them (at most ``WINDOW`` not yet folded, read from its /metrics). Each document is
  about 1.1 KB: a numbered first line, then four paragraphs of plain sentences and one
  an editor has something to say about (3-4 live suggestions a document). The paragraphs
  come in 16 variants, so the analyzer's paragraph cache is warm and a pass costs
  little: the memory measured is the documents'. The owner folds, analyzes,
  checkpoints, and evicts each document ``evict_s`` after its last command.
- Memory: the owner's RSS before any document, and once each wave is all evicted. RSS
  is what the process holds from the system, freed memory included (CPython and malloc
  keep what they freed for reuse), so it stands at the high-water of what was in memory
  at once. Against ``BOUND_RSS_MIB`` once all are idle; beside it, what each document
  opened after the first wave added (the evicted ones' index, and allocator drift).
- Latency: from the moment an edit is sent to its ``doc.ack`` on the stream topic, for
  edits to documents coming back from their snapshot (each evicted document's first
  edit: one read of its snapshot, then the fold) against edits to ``resident`` documents
  kept in memory by a steady stream of edits (the live loop), interleaved at
  ``edit_rate`` a second.

Run alone: ``python -m benchmarks.owner_memory [documents [waves [evict_s]]]`` prints the
result as JSON (``evict_s`` 3600: eviction off, the figure before it).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from amplify_stream.bus import Bus, create_bus
from amplify_stream.config import Settings
from amplify_stream.events import encode, headers_for
from amplify_stream.events.documents import (
    DocChange,
    DocumentCommand,
    DocumentEdited,
    DocumentOpenRequested,
)
from amplify_stream.events.wire import EVENT_TYPE_HEADER
from amplify_stream.topics import Topics
from benchmarks.measure import CRAFT_SENTENCES, percentiles, story
from benchmarks.stack import KAFKA, documents_stack, free_port, metric_samples, rss_kib

DOCUMENTS = 50_000
WAVES = 4
EVICT_S = 5.0
OPEN_BATCH = 250
# Opened but not yet folded by the owner, at most (it folds them as fast as it can).
WINDOW = 1500
# Measured edits: one to each of RETURNING evicted documents, and as many to RESIDENT
# documents in turn (each edited about every RESIDENT / (EDIT_RATE / 2) s, well inside
# EVICT_S: they stay in memory).
RETURNING = 300
RESIDENT = 20
EDIT_RATE = 40.0
# The stated bound: the owner's RSS once DOCUMENTS of about 1.1 KB, opened as fast as it
# folds them, are all idle with EVICT_S. Its parts: the empty owner (about 85 MiB), the
# analyzer's paragraph cache at its 16 MiB budget (about 35 MiB with the allocator's
# overhead), the documents in memory at once (about 4,000 here, 20 KB each with what
# their traffic holds: RSS keeps that high-water), and 1 KB for each evicted one (its
# index entry is about 155 bytes of heap; the rest, what the allocators did not give
# back). Eviction off, the same documents take about 7.8 KB each, 511 MiB in all.
BOUND_RSS_MIB = 256.0
# How long the owner may take to evict a wave after its last open. An ``evict_s`` this long
# or longer is eviction off (the figure before it): a wave is measured once folded and
# EVICTION_OFF_SETTLE_S later (its passes and checkpoints).
SETTLE_S = 120.0
EVICTION_OFF_SETTLE_S = 5.0
USER = "bench-owner"
REPLY_TO = "bench-socket"
FIRST_LINE = "Chapter {}: the harbour at night."


def document_text(i: int) -> str:
    """About 1.1 KB: a line of its own, then four paragraphs in one of 16 variants."""
    n = len(CRAFT_SENTENCES)
    paragraphs = [
        f"{story(40, seed=(i % 16) * 4 + p)} {CRAFT_SENTENCES[(i + p) % n]}" for p in range(4)
    ]
    return "\n".join([FIRST_LINE.format(i), *paragraphs])


@dataclass
class Acks:
    """``doc.ack`` records on the stream topic, by (document, version): when each came."""

    at: dict[tuple[str, int], float] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def follow(self, bus: Bus, topic: str, reading: asyncio.Event) -> None:
        async with bus.read(topic, "end") as records:
            reading.set()
            async for record in records:
                if record.header(EVENT_TYPE_HEADER) != b"doc.ack":
                    continue
                now = time.monotonic()
                ack = orjson.loads(record.value)
                self.at.setdefault((ack["doc_id"], ack["version"]), now)
                self.changed.set()

    async def until(self, keys: list[tuple[str, int]]) -> None:
        while not all(k in self.at for k in keys):
            self.changed.clear()
            await self.changed.wait()


def edit(doc_id: str, version: int, text: str) -> DocumentEdited:
    """A key typed at the end of the document's first line."""
    at = len(FIRST_LINE.format(0)) - 1  # before the full stop; the number shifts it
    return DocumentEdited(
        doc_id=doc_id,
        user_id=USER,
        reply_to=REPLY_TO,
        version=version,
        changes=[DocChange(start_utf16=at, end_utf16=at, text=text)],
    )


async def owner_memory(
    documents: int = DOCUMENTS,
    *,
    waves: int = WAVES,
    evict_s: float = EVICT_S,
    returning: int = RETURNING,
    resident: int = RESIDENT,
    edit_rate: float = EDIT_RATE,
) -> dict[str, Any]:
    """The figure: the owner's memory with ``documents`` opened (in ``waves``) and gone
    idle, and the latency of an edit to a document back from its snapshot against the
    live loop's."""
    probes_port = free_port()
    extra = {"AMPLIFY_DOC_EVICT_S": str(evict_s), "AMPLIFY_METRICS_PORT": str(probes_port)}
    async with documents_stack(**extra) as stack, aiohttp.ClientSession() as session:
        settings = Settings(
            _env_file=None,
            bus="kafka",
            kafka_bootstrap_servers=KAFKA,
            topic_prefix=stack.env["AMPLIFY_TOPIC_PREFIX"],
        )
        bus = create_bus(settings)
        await bus.start()
        producer = bus.producer(client_id="bench-owner-memory")
        await producer.start()
        owner = Owner(stack.pids["documents"], f"http://127.0.0.1:{probes_port}", session)
        topics = Topics.from_settings(settings)

        async def send(commands: list[DocumentCommand]) -> None:
            sent = [
                await producer.send(topics.documents, c.doc_id, encode(c), headers_for(c.type))
                for c in commands
            ]
            await asyncio.gather(*sent)

        try:
            began = time.monotonic()
            memory = await _open(send, owner, documents, waves, evict_s)
            opened_s = time.monotonic() - began
            acks = Acks()
            reading = asyncio.Event()
            follower = asyncio.create_task(acks.follow(bus, topics.stream, reading))
            await reading.wait()
            try:
                ids = memory.pop("ids")
                latency = await _edits(send, acks, owner, ids, returning, resident, edit_rate)
            finally:
                follower.cancel()
                await asyncio.gather(follower, return_exceptions=True)
            seen = await owner.metrics()
            memory["rss_mib"]["after_edits"] = owner.rss_mib()
        finally:
            await producer.stop()
            await bus.close()
    loads = seen.get("amplify_doc_loads_total", 0.0)
    return {
        "bus": "kafka",
        "documents": documents,
        "document_bytes": len(document_text(documents // 2).encode()),
        "evict_s": evict_s,
        "opened_and_evicted_s": round(opened_s, 1),
        **memory,
        "loads": int(loads),
        **latency,
    }


@dataclass
class Owner:
    """The documents process: its RSS and its /metrics."""

    pid: int
    probes: str
    session: aiohttp.ClientSession

    def rss_mib(self) -> float:
        return round(rss_kib(self.pid) / 1024, 1)

    async def metrics(self) -> dict[str, float]:
        """Its document samples, summed over their labels."""
        found: dict[str, float] = {}
        for sample in await metric_samples(self.session, f"{self.probes}/metrics", "amplify_doc_"):
            found[sample.name] = found.get(sample.name, 0.0) + sample.value
        return found

    async def folded(self) -> tuple[float, float]:
        """Documents it has taken in (in memory or evicted), and those in memory."""
        seen = await self.metrics()
        resident = seen.get("amplify_doc_resident", 0.0)
        return resident + seen.get("amplify_doc_evictions_total", 0.0), resident


async def _open(
    send: Any, owner: Owner, documents: int, waves: int, evict_s: float
) -> dict[str, Any]:
    """``documents`` opened in ``waves``, each waited for until all of it is evicted; the
    owner's RSS then, and the most it held in memory at once."""
    ids = [str(uuid.uuid4()) for _ in range(documents)]
    baseline = owner.rss_mib()
    after_wave: list[float] = []
    most_resident = 0.0
    per_wave = -(-documents // waves)
    for wave in range(waves):
        end = min(documents, (wave + 1) * per_wave)
        for start in range(wave * per_wave, end, OPEN_BATCH):
            while True:  # no more than WINDOW ahead of the owner
                folded, resident = await owner.folded()
                most_resident = max(most_resident, resident)
                if start - folded < WINDOW:
                    break
                await asyncio.sleep(0.2)
            await send(
                [
                    DocumentOpenRequested(
                        doc_id=ids[i],
                        user_id=USER,
                        reply_to=REPLY_TO,
                        create=True,
                        text=document_text(i),
                    )
                    for i in range(start, min(end, start + OPEN_BATCH))
                ]
            )
        # All of the wave folded, analyzed, checkpointed and gone idle (or, with eviction
        # off, folded and given time for its passes and checkpoints).
        async with asyncio.timeout(SETTLE_S + min(evict_s, SETTLE_S)):
            while True:
                folded, resident = await owner.folded()
                most_resident = max(most_resident, resident)
                if folded - resident >= end and not resident:
                    break
                if evict_s >= SETTLE_S and folded >= end:
                    await asyncio.sleep(EVICTION_OFF_SETTLE_S)
                    break
                await asyncio.sleep(0.5)
        after_wave.append(owner.rss_mib())
    opened_later = documents - per_wave
    growth = (after_wave[-1] - after_wave[0]) * 1024 * 1024 / opened_later if opened_later else 0
    return {
        "ids": ids,
        "rss_mib": {"baseline": baseline, "after_each_wave": after_wave},
        "most_resident_at_once": int(most_resident),
        # What each document opened after the first wave added to the owner's RSS, once
        # evicted: its index entry, and what the allocators did not reuse.
        "rss_bytes_per_later_document": round(growth),
        "bound_rss_mib": BOUND_RSS_MIB,
        "bound_met": after_wave[-1] <= BOUND_RSS_MIB,
    }


async def _edits(
    send: Any,
    acks: Acks,
    owner: Owner,
    ids: list[str],
    returning: int,
    resident: int,
    edit_rate: float,
) -> dict[str, Any]:
    """Edits to ``returning`` evicted documents (one each) interleaved with edits to
    ``resident`` ones kept in memory, ``edit_rate`` a second: the ack latency of each."""
    live = ids[:resident]
    # Brought back first, so that they are in memory when measured.
    await send([edit(doc_id, 1, "!") for doc_id in live])
    async with asyncio.timeout(60):
        await acks.until([(d, 1) for d in live])
    version = dict.fromkeys(live, 1)
    back = ids[resident : resident + returning]
    before = await owner.metrics()
    sent: dict[str, list[tuple[tuple[str, int], float]]] = {"returning": [], "resident": []}
    pending: list[asyncio.Task[None]] = []
    began = time.monotonic()
    for n in range(2 * returning):
        if n % 2:
            doc_id = live[(n // 2) % resident]
            version[doc_id] += 1
            key, kind = (doc_id, version[doc_id]), "resident"
        else:
            key, kind = (back[n // 2], 1), "returning"
        sent[kind].append((key, time.monotonic()))
        pending.append(asyncio.create_task(send([edit(key[0], key[1], "!")])))
        ahead = began + (n + 1) / edit_rate - time.monotonic()
        if ahead > 0:
            await asyncio.sleep(ahead)
    await asyncio.gather(*pending)
    async with asyncio.timeout(60):
        await acks.until([k for kind in sent.values() for k, _ in kind])

    def ms(kind: str) -> dict[str, float]:
        return percentiles([(acks.at[k] - t) * 1000 for k, t in sent[kind]])

    returning_ms, resident_ms = ms("returning"), ms("resident")
    after = await owner.metrics()
    loads = after["amplify_doc_load_ms_count"] - before["amplify_doc_load_ms_count"]
    loaded_ms = after["amplify_doc_load_ms_sum"] - before["amplify_doc_load_ms_sum"]
    return {
        "ack_ms": {"returning": returning_ms, "resident": resident_ms},
        # Of a returning edit's: from its command to its document back in memory.
        "load_ms_mean": round(loaded_ms / loads, 2) if loads else None,
        # The target: a document back from its snapshot is acknowledged within the live
        # loop's p99 (its median, and its p99).
        "returning_p50_within_live_p99": returning_ms["p50"] <= resident_ms["p99"],
        "returning_p99_within_live_p99": returning_ms["p99"] <= resident_ms["p99"],
    }


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else DOCUMENTS
    waves = int(sys.argv[2]) if len(sys.argv) > 2 else WAVES
    evict = float(sys.argv[3]) if len(sys.argv) > 3 else EVICT_S
    print(json.dumps(asyncio.run(owner_memory(count, waves=waves, evict_s=evict)), indent=2))
