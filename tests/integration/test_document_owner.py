"""The document owner on the bus alone (no gateway): commands on the edit log in, answers
on the stream topic out, on both buses. Versions, refusals, one pass after a burst, the
state rebuilt by a new owner from the snapshots and the edits after them, and the
``document.analyzed`` outcome exactly once per pass."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from amplify_stream.bus.base import Bus, Record
from amplify_stream.config import Settings
from amplify_stream.events import encode, headers_for
from amplify_stream.events.documents import (
    DocChange,
    DocumentCommand,
    DocumentEdited,
    DocumentOpenRequested,
)
from amplify_stream.topics import Topics
from consumers.runtime import running
from tests.conftest import SettingsFactory

ME = "socket-a"
TEXT = "Mara was very angry at the harbour wall.\nThe rain fell.\nTom waited."


@pytest.fixture
def doc_settings(make_settings: SettingsFactory, bus_kind: str) -> Settings:
    return make_settings(bus=bus_kind, doc_idle_ms=100, doc_snapshot_ms=100)


class Log:
    """The stream topic's document events as one reader sees them."""

    def __init__(self) -> None:
        self.events: list[tuple[dict[str, Any], str | None]] = []
        self.changed = asyncio.Event()
        self.reading = asyncio.Event()

    async def follow(self, bus: Bus, topic: str) -> None:
        async with bus.read(topic, "end") as records:
            self.reading.set()  # what is written from now on is read
            async for record in records:
                self._add(record)

    def _add(self, record: Record) -> None:
        to = record.header("reply-to")
        self.events.append((json.loads(record.value), to.decode() if to else None))
        self.changed.set()

    def of(self, kind: str, **where: Any) -> list[dict[str, Any]]:
        return [
            e
            for e, _ in self.events
            if e["type"] == kind and all(e.get(k) == v for k, v in where.items())
        ]

    async def until(self, kind: str, count: int = 1, timeout: float = 30, **where: Any) -> None:
        async with asyncio.timeout(timeout):
            while len(self.of(kind, **where)) < count:
                self.changed.clear()
                await self.changed.wait()


@contextlib.asynccontextmanager
async def stream_log(bus: Bus, topics: Topics) -> AsyncIterator[Log]:
    log = Log()
    task = asyncio.create_task(log.follow(bus, topics.stream))
    reading = asyncio.create_task(log.reading.wait())
    await asyncio.wait({task, reading}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    try:
        yield log
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def send(bus: Bus, topics: Topics, *commands: DocumentCommand) -> None:
    producer = bus.producer(client_id="test-commands")
    await producer.start()
    try:
        for c in commands:
            await producer.send_and_wait(topics.documents, c.doc_id, encode(c), headers_for(c.type))
    finally:
        await producer.stop()


def edit(doc_id: str, version: int, start: int, end: int, text: str) -> DocumentEdited:
    return DocumentEdited(
        doc_id=doc_id,
        user_id="u1",
        reply_to=ME,
        version=version,
        changes=[DocChange(start_utf16=start, end_utf16=end, text=text)],
    )


def create(doc_id: str, text: str = TEXT) -> DocumentOpenRequested:
    return DocumentOpenRequested(doc_id=doc_id, user_id="u1", reply_to=ME, create=True, text=text)


async def test_edits_fold_in_order_and_a_burst_gets_one_pass(
    bus: Bus, doc_settings: Settings
) -> None:
    topics = Topics.from_settings(doc_settings)
    await bus.ensure_topics(topics.specs())
    doc_id = str(uuid.uuid4())
    async with stream_log(bus, topics) as log, running("documents", bus, doc_settings):
        await send(bus, topics, create(doc_id))
        await log.until("doc.opened")
        await log.until("doc.analyzed", version=0)
        first = log.of("doc.suggestion", version=0)
        assert {s["quote"] for s in first} >= {"was very angry", "very angry"}
        # A burst of five keys, then quiet: five acks, one pass, for the last version.
        end = len("Mara was very angry at the harbour wall.")
        await send(
            bus, topics, *[edit(doc_id, v, end + v - 1, end + v - 1, "!") for v in range(1, 6)]
        )
        await log.until("doc.analyzed", version=5)
        assert [a["version"] for a in log.of("doc.ack")] == [1, 2, 3, 4, 5]
        assert [a["version"] for a in log.of("doc.analyzed")] == [0, 5]
        assert log.of("doc.analyzed", version=5)[0]["reanalyzed"] == 1
        # Conflicts and bad offsets: refused, nothing applied, the version stays.
        await send(bus, topics, edit(doc_id, 5, 0, 0, "x"), edit(doc_id, 6, 500, 501, "x"))
        await log.until("error", count=2)
        codes = [(e["code"], e["version"]) for e in log.of("error")]
        assert codes == [("version_conflict", 5), ("invalid_message", 5)]
        # Deleting the marked words retracts their marks at once, with the ack.
        await send(bus, topics, edit(doc_id, 6, 5, 19, "was furious"))
        await log.until("doc.ack", version=6)
        retracted = {i for r in log.of("doc.retracted", version=6) for i in r["ids"]}
        assert retracted == {
            s["id"] for s in first if s["quote"] in ("was very angry", "very angry")
        }
        # Every answer went to the socket that asked, events to all.
        for event, to in log.events:
            assert (to == ME) == (event["type"] in ("doc.opened", "doc.ack", "error"))


async def test_a_new_owner_rebuilds_the_document(bus: Bus, doc_settings: Settings) -> None:
    topics = Topics.from_settings(doc_settings)
    await bus.ensure_topics(topics.specs())
    doc_id = str(uuid.uuid4())
    async with stream_log(bus, topics) as log:
        async with running("documents", bus, doc_settings):
            await send(bus, topics, create(doc_id, "abc"))
            await log.until("doc.analyzed", version=0)
            await send(bus, topics, edit(doc_id, 1, 3, 3, "d"))
            await log.until("doc.ack", version=1)
            await asyncio.sleep(0.5)  # a checkpoint holds version 1
        # Edits while no owner runs: the next one folds them after the snapshot.
        await send(bus, topics, edit(doc_id, 2, 4, 4, "e"), edit(doc_id, 3, 0, 1, "A"))
        async with running("documents", bus, doc_settings):
            await log.until("doc.ack", version=3)
            await send(
                bus,
                topics,
                DocumentOpenRequested(doc_id=doc_id, user_id="u1", reply_to=ME, create=False),
                DocumentOpenRequested(doc_id=doc_id, user_id="u2", reply_to="b", create=False),
            )
            await log.until("doc.opened", count=2)
            await log.until("error")
            reopened = log.of("doc.opened")[-1]
            assert (reopened["text"], reopened["version"]) == ("Abcde", 3)
            # A reopen tells the insights of the text now, to the socket that asked.
            await log.until("doc.insight", count=4, version=3)
            told = [(e, to) for e, to in log.events if e["type"] == "doc.insight"]
            assert [to for e, to in told if e["version"] == 3][-4:] == [ME] * 4
            assert log.of("error")[-1]["code"] == "not_found"  # another user's document
            await log.until("doc.analyzed", version=3)
    # One document.analyzed outcome per pass, committed with the state that records it.
    ends = await bus.end_offsets(topics.outcomes)
    analyzed = []
    for partition, end in ends.items():
        for record in await bus.read_range(
            topics.outcomes, partition, 0, end, isolation="read_committed"
        ):
            value = json.loads(record.value)
            if value["type"] == "document.analyzed" and value["doc_id"] == doc_id:
                analyzed.append(value["version"])
    assert sorted(analyzed) == [0, 1, 3]
