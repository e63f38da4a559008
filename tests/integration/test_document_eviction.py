"""Bounded documents owners, on both buses: a document idle for ``doc_evict_s`` leaves its
owner's memory (its snapshot is the truth) and comes back, whole, on its next edit or
open; the commands that arrive while it is read back are all answered, in log order,
while other documents fold on; a new owner reads into memory only what was written
lately. What is in memory is read from the owner's own metrics."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from amplify_stream.bus.base import Bus
from amplify_stream.config import Settings
from amplify_stream.events import encode, headers_for
from amplify_stream.events.documents import (
    DocumentCommand,
    DocumentDismissed,
    DocumentOpenRequested,
)
from amplify_stream.metrics import Metrics
from amplify_stream.topics import Topics
from consumers.runtime import running
from tests.conftest import SettingsFactory
from tests.integration.test_document_owner import ME, Log, create, edit, send, stream_log

EVICT_S = 0.6
END = len("Mara was very angry at the harbour wall.")


@pytest.fixture
def evict_settings(make_settings: SettingsFactory, bus_kind: str) -> Settings:
    return make_settings(bus=bus_kind, doc_idle_ms=50, doc_snapshot_ms=100, doc_evict_s=EVICT_S)


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def resident(metrics: Metrics) -> float:
    """Documents in memory, over every partition the owner holds."""
    return sum(
        s.value
        for family in metrics.registry.collect()
        if family.name == "amplify_doc_resident"
        for s in family.samples
    )


async def evicted(metrics: Metrics, count: int, timeout: float = 20) -> None:
    """Once the owner has evicted ``count`` documents in all and holds none."""
    async with asyncio.timeout(timeout):
        while sample(metrics, "amplify_doc_evictions_total") < count or resident(metrics):  # noqa: ASYNC110 - polling the owner's metrics
            await asyncio.sleep(0.05)


async def burst(bus: Bus, topics: Topics, *commands: DocumentCommand) -> None:
    """``commands`` made visible to the owner at once (one transaction, so its
    ``read_committed`` consumer fetches them together, on Kafka as in memory)."""
    producer = bus.producer(transactional_id=f"test-burst-{uuid.uuid4().hex}")
    await producer.start()
    try:
        async with producer.transaction():
            sent = [
                await producer.send(topics.documents, c.doc_id, encode(c), headers_for(c.type))
                for c in commands
            ]
            await asyncio.gather(*sent)
    finally:
        await producer.stop()


def reopen(doc_id: str) -> DocumentOpenRequested:
    return DocumentOpenRequested(doc_id=doc_id, user_id="u1", reply_to=ME, create=False)


async def reopened(bus: Bus, topics: Topics, log: Log, doc_id: str) -> list[dict[str, Any]]:
    """What a reopen of ``doc_id`` answers its socket, from ``doc.opened`` to its
    ``doc.analyzed`` (without the times they were made)."""
    start = len(log.events)
    await send(bus, topics, reopen(doc_id))
    async with asyncio.timeout(30):
        while not any(
            e["type"] == "doc.analyzed" and to == ME and e["doc_id"] == doc_id
            for e, to in log.events[start:]
        ):
            log.changed.clear()
            await log.changed.wait()
    return [
        {k: v for k, v in e.items() if k != "at"}
        for e, to in log.events[start:]
        if to == ME and e["doc_id"] == doc_id
    ]


async def dismissed_one(bus: Bus, topics: Topics, log: Log, doc_id: str) -> str:
    """The writer's say on the document: its first suggestion dismissed (its id)."""
    await log.until("doc.analyzed", version=0, doc_id=doc_id)
    target = log.of("doc.suggestion", doc_id=doc_id)[0]["id"]
    say = DocumentDismissed(doc_id=doc_id, user_id="u1", reply_to=ME, id=target, scope="suggestion")
    await send(bus, topics, say)
    await log.until("doc.ignores", doc_id=doc_id)
    return str(target)


async def test_an_evicted_document_comes_back_on_its_next_edit(
    bus: Bus, evict_settings: Settings
) -> None:
    topics = Topics.from_settings(evict_settings)
    await bus.ensure_topics(topics.specs())
    idle = str(uuid.uuid4())
    # Beside it in the edit log and on the stream topic: the owner fetches the burst in
    # one go, in log order, and the reader hears the answers in the order they were sent
    # (records of two partitions may come in two fetches, in either order).
    busy = beside(bus, topics, idle)
    metrics = Metrics()
    async with (
        stream_log(bus, topics) as log,
        running("documents", bus, evict_settings, metrics=metrics),
    ):
        await send(bus, topics, create(idle))
        target = await dismissed_one(bus, topics, log, idle)
        before = await reopened(bus, topics, log, idle)
        assert before[0]["type"] == "doc.opened" and before[0]["version"] == 0
        await evicted(metrics, 1)
        assert sample(metrics, "amplify_doc_loads_total", result="loaded") == 0
        # Another document, in memory, edited in the same burst as the evicted one.
        await send(bus, topics, create(busy))
        await log.until("doc.opened", doc_id=busy)
        await burst(
            bus,
            topics,
            edit(idle, 1, END, END, "!"),
            edit(busy, 1, END, END, "?"),
            *[edit(idle, v, END + v - 1, END + v - 1, "!") for v in range(2, 6)],
        )
        await log.until("doc.ack", count=5, doc_id=idle)
        await log.until("doc.ack", doc_id=busy)
        # Every edit that waited for the document is acknowledged, in log order, after
        # one read of its snapshot; the other document was not held up behind it.
        assert [a["version"] for a in log.of("doc.ack", doc_id=idle)] == [1, 2, 3, 4, 5]
        assert sample(metrics, "amplify_doc_loads_total", result="loaded") == 1
        acks = [(e["doc_id"], e["version"]) for e, _ in log.events if e["type"] == "doc.ack"]
        assert acks.index((busy, 1)) < acks.index((idle, 1))
        await log.until("doc.analyzed", version=5, doc_id=idle)
        # Back whole: the text the edits made, the suggestions the pass left, the dismissal.
        after = await reopened(bus, topics, log, idle)
        opened = after[0]
        assert (opened["text"], opened["version"]) == (
            before[0]["text"][:END] + "!!!!!" + before[0]["text"][END:],
            5,
        )
        ignores = next(e for e in after if e["type"] == "doc.ignores")
        assert [d["id"] for d in ignores["dismissed"]] == [target]
        # The live set is what every watcher was told: found, less retracted.
        told = {e["id"] for e, to in log.events if e["type"] == "doc.suggestion" and not to}
        told -= {i for e in log.of("doc.retracted", doc_id=idle) for i in e["ids"]}
        live = {e["id"] for e in after if e["type"] == "doc.suggestion"}
        assert target not in live
        assert live == told - {e["id"] for e in log.of("doc.suggestion", doc_id=busy)}
    # One document.analyzed outcome per pass, whatever left memory and came back.
    assert await analyzed_versions(bus, topics, idle) == [0, 5]


async def test_an_evicted_document_comes_back_on_its_next_open_and_to_a_new_owner(
    bus: Bus, evict_settings: Settings
) -> None:
    topics = Topics.from_settings(evict_settings)
    await bus.ensure_topics(topics.specs())
    doc_id = str(uuid.uuid4())
    async with stream_log(bus, topics) as log:
        metrics = Metrics()
        async with running("documents", bus, evict_settings, metrics=metrics):
            await send(bus, topics, create(doc_id))
            target = await dismissed_one(bus, topics, log, doc_id)
            await send(bus, topics, edit(doc_id, 1, END, END, "!"))
            await log.until("doc.analyzed", version=1, doc_id=doc_id)
            before = await reopened(bus, topics, log, doc_id)
            await evicted(metrics, 1)
            # The reopen reads it back and answers as before it left.
            assert await reopened(bus, topics, log, doc_id) == before
            assert sample(metrics, "amplify_doc_loads_total", result="loaded") == 1
            assert resident(metrics) == 1
            await evicted(metrics, 2)
        # A new owner reads into memory only what was written within doc_evict_s (this
        # document's snapshot is older than its last command, idle since): it is known by
        # where its snapshot is, and read back when it is opened.
        metrics = Metrics()
        async with running("documents", bus, evict_settings, metrics=metrics):
            assert await reopened(bus, topics, log, doc_id) == before
            assert sample(metrics, "amplify_doc_loads_total", result="loaded") == 1
            ignores = next(e for e in before if e["type"] == "doc.ignores")
            assert [d["id"] for d in ignores["dismissed"]] == [target]
            await send(bus, topics, edit(doc_id, 2, END, END, "!"))
            await log.until("doc.ack", version=2, doc_id=doc_id)


async def analyzed_versions(bus: Bus, topics: Topics, doc_id: str) -> list[int]:
    """The versions of the committed ``document.analyzed`` outcomes of ``doc_id``."""
    found = []
    for partition, end in (await bus.end_offsets(topics.outcomes)).items():
        for record in await bus.read_range(
            topics.outcomes, partition, 0, end, isolation="read_committed"
        ):
            value = json.loads(record.value)
            if value["type"] == "document.analyzed" and value["doc_id"] == doc_id:
                found.append(value["version"])
    return sorted(found)


class _Aborted(Exception):
    pass


@contextlib.asynccontextmanager
async def open_transaction(bus: Bus, topic: str, key: str) -> AsyncIterator[None]:
    """A transaction of another producer left open on ``key``'s partition of ``topic``, then
    aborted: ``read_committed`` reads of that partition wait for it (Kafka's last stable
    offset), as they would for a checkpoint that never ends."""
    producer = bus.producer(transactional_id=f"test-open-{uuid.uuid4().hex}")
    await producer.start()
    try:
        with contextlib.suppress(_Aborted):
            async with producer.transaction():
                await (await producer.send(topic, key, b"{}"))
                yield
                raise _Aborted
    finally:
        await producer.stop()


def on_partition(bus: Bus, topic: str, partitions: int, partition: int) -> str:
    """A new id whose key falls on ``partition`` of ``topic``."""
    while bus.partition_for(topic, key := str(uuid.uuid4()), partitions) != partition:
        pass
    return key


def beside(bus: Bus, topics: Topics, doc_id: str) -> str:
    """A new document id on ``doc_id``'s partitions of the edit log and the stream topic."""
    counts = {spec.name: spec.partitions for spec in topics.specs()}
    where = {t: bus.partition_for(t, doc_id, counts[t]) for t in (topics.documents, topics.stream)}
    while True:
        other = str(uuid.uuid4())
        if all(bus.partition_for(t, other, counts[t]) == p for t, p in where.items()):
            return other


# Kafka only: there a read_committed read of an offset past an open transaction waits for
# it (the partition's last stable offset), which is what holds the document's read back
# here. The memory bus holds back only the records from the open one on, and reads a
# committed record after it at once (``memory_log.Topic.fetch``).
@pytest.mark.parametrize("bus_kind", ["kafka"], indirect=True)
async def test_a_command_waiting_for_its_document_is_never_committed_past(
    bus: Bus, make_settings: SettingsFactory, bus_kind: str
) -> None:
    """While an evicted document is read back, the owner folds the other documents'
    commands and checkpoints, but its committed place stays at the command that waits: an
    owner stopped then, the next one folds and answers that command."""
    settings = make_settings(
        bus=bus_kind,
        doc_idle_ms=50,
        doc_snapshot_ms=100,
        doc_evict_s=EVICT_S,
        worker_shutdown_grace_s=0.2,
    )
    topics = Topics.from_settings(settings)
    await bus.ensure_topics(topics.specs())
    count = settings.topic_partitions
    evicted_id = str(uuid.uuid4())
    partition = bus.partition_for(topics.documents, evicted_id, count)
    warm, other = (on_partition(bus, topics.documents, count, partition) for _ in range(2))
    blocker = on_partition(bus, topics.snapshots, count, partition)
    async with stream_log(bus, topics) as log, contextlib.AsyncExitStack() as blocked:
        metrics = Metrics()
        async with running("documents", bus, settings, metrics=metrics):
            await send(bus, topics, create(warm))
            await log.until("doc.opened", doc_id=warm)  # the partition's snapshots are read
            # Before the document's snapshots: reading them back waits for this.
            await blocked.enter_async_context(open_transaction(bus, topics.snapshots, blocker))
            await send(bus, topics, create(evicted_id))
            await log.until("doc.analyzed", version=0, doc_id=evicted_id)
            await evicted(metrics, 2)
            # Its read waits; a new document of the same partition folds on, and the owner
            # checkpoints meanwhile (its place in the log is past the edit).
            await send(bus, topics, edit(evicted_id, 1, END, END, "!"), create(other))
            await send(bus, topics, edit(other, 1, 0, 0, "A"))
            await log.until("doc.ack", version=1, doc_id=other)
            await asyncio.sleep(5 * settings.doc_snapshot_ms / 1000)
            assert not log.of("doc.ack", doc_id=evicted_id)
            assert sample(metrics, "amplify_doc_loads_total", result="loaded") == 0
        # The owner stopped with the edit still waiting: its last checkpoint committed the
        # place before it. The transaction is aborted; the next owner folds the edit.
        await blocked.aclose()
        async with running("documents", bus, settings):
            await log.until("doc.ack", version=1, doc_id=evicted_id)
    assert [a["version"] for a in log.of("doc.ack", doc_id=evicted_id)] == [1]
