"""A bounded documents owner as its own process, against the real broker: a gateway and a
``worker documents`` with a short ``AMPLIFY_DOC_EVICT_S``. A writer types into three
documents and leaves them; the owner's /metrics shows them evicted (none in memory).
Reopened on a new socket, each comes back from its snapshot with its text, version and
marks, and takes more typing; the owner's /metrics shows one load each."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from benchmarks.stack import metric_samples
from tests.e2e.conftest import Proc, base_env, wait_ready
from tests.live_documents import check_marks, writer
from tests.support import free_port, sign_up

Start = Callable[..., Awaitable[Proc]]
DOCUMENTS = 3


async def owner_metrics(session: aiohttp.ClientSession, base: str) -> dict[str, float]:
    """The owner's document samples, by name (summed over their labels) and by
    ``name,label value``."""
    found: dict[str, float] = {}
    for sample in await metric_samples(session, f"{base}/metrics", "amplify_doc_"):
        found[sample.name] = found.get(sample.name, 0.0) + sample.value
        for value in sample.labels.values():
            key = f"{sample.name},{value}"
            found[key] = found.get(key, 0.0) + sample.value
    return found


@pytest.mark.kafka
async def test_an_owner_process_evicts_idle_documents_and_reads_them_back(
    processes: Start, tmp_path: Path
) -> None:
    port, metrics_port = free_port(), free_port()
    env = base_env(tmp_path, AMPLIFY_BUS="kafka", AMPLIFY_PORT=str(port))
    documents = await processes(
        "documents",
        ["worker", "documents"],
        {**env, "AMPLIFY_DOC_EVICT_S": "1", "AMPLIFY_METRICS_PORT": str(metrics_port)},
    )
    await documents.wait_for_line("documents running")
    gateway = await processes("gateway", ["gateway"], env)
    base, probes = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}"
    await wait_ready(base)
    async with aiohttp.ClientSession() as session:
        token = await sign_up(session, base, "evelyn")
        left = []
        async with writer(session, base, token) as w:
            for i in range(DOCUMENTS):
                await w.open(f"The harbour, day {i}.\n")
                await w.type("Mara was very angry.")
                doc = await w.settled()
                assert "very angry" in {m.event["quote"] for m in doc.marks.values()}
                left.append((doc.doc_id, doc.text, doc.version, set(doc.marks)))
        # Left alone: each leaves the owner's memory once its checkpoint holds it.
        async with asyncio.timeout(30):
            while True:
                seen = await owner_metrics(session, probes)
                if seen.get("amplify_doc_evictions_total", 0) >= DOCUMENTS and not seen.get(
                    "amplify_doc_resident"
                ):
                    break
                await asyncio.sleep(0.2)
        assert seen.get("amplify_doc_loads_total", 0) == 0
        async with writer(session, base, token) as w:
            for doc_id, text, version, marks in left:
                await w.reopen(doc_id)
                doc = await w.settled()  # the reopen's answer ends with its doc.analyzed
                assert (doc.text, doc.version, set(doc.marks)) == (text, version, marks)
                await w.type(" The end.")
                settled = await w.settled()
                assert settled.text == text + " The end."
                check_marks(settled)
        seen = await owner_metrics(session, probes)
        assert seen["amplify_doc_loads_total,loaded"] == DOCUMENTS
        assert seen["amplify_doc_load_ms_count"] == DOCUMENTS
    assert await gateway.stop() == 0
    assert await documents.stop() == 0
