"""The writer's say counted (docs/protocol.md section 6, "The writer's say"), on both
buses: each decision a writer makes, on the socket (an accepted replacement, a dismissal,
a rule off in the document, a word vouched for everywhere) and over HTTP (a rule off in
the preferences), is exactly one ``suggestion.feedback`` on the outcomes topic for a
``read_committed`` reader, written with its owner's checkpoint; ``amplify-stream watch``'s
aggregates of them (and, on Kafka, the command reading the topic itself) agree with
counting them by hand, and so does ``amplify_suggestion_feedback_total`` on ``/metrics``."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer
from prometheus_client.parser import text_string_to_metric_families

from amplify_stream.analytics import OutcomeStats
from amplify_stream.client import AmplifyClient, PreferenceChange
from amplify_stream.client.live import Mark
from amplify_stream.commands.watch import WatchOptions, watch
from amplify_stream.gateway import keys
from amplify_stream.text.edits import Change
from tests.integration.conftest import Service
from tests.live_documents import Writer, writer

StartService = Callable[..., Awaitable[Service]]
Event = dict[str, Any]

FAST = {"doc_idle_ms": 120, "doc_snapshot_ms": 150}
PASSWORD = "correct horse battery"
TEXT = (
    'The dog was very big. "Come here," Tom said softly.\n'
    "Mara met Maura at the gate. Maura smiled at Mara.\n"
    "The yard was very small."
)
# What a feedback outcome says, as compared here.
FIELDS = ("action", "scope", "rule", "focus", "suggestion_id", "doc_id", "provider", "word")


@asynccontextmanager
async def feedback_read(svc: Service) -> AsyncIterator[Callable[[], Awaitable[list[Event]]]]:
    """``read()``: every ``suggestion.feedback`` on the outcomes topic so far, as an
    analytics reader sees it (read_committed, from the earliest offset): on Kafka a plain
    consumer of its own, on the memory bus the bus's reader."""
    topic = svc.topics.outcomes
    if svc.settings.bus != "kafka":
        bus = svc.app[keys.BUS]

        async def read_memory() -> list[Event]:
            found = []
            for partition, end in (await bus.end_offsets(topic)).items():
                records = await bus.read_range(topic, partition, 0, end, isolation="read_committed")
                found += [json.loads(r.value) for r in records if r.value]
            return [e for e in found if e["type"] == "suggestion.feedback"]

        yield read_memory
        return
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=svc.settings.kafka_bootstrap_servers,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen: list[Event] = []

    async def read_kafka() -> list[Event]:
        for records in (await consumer.getmany(timeout_ms=200)).values():
            for record in records:
                event = json.loads(record.value)
                if event["type"] == "suggestion.feedback":
                    assert record.key.decode() == (event.get("doc_id") or event["user_id"])
                    assert dict(record.headers)["event-type"] == b"suggestion.feedback"
                    seen.append(event)
        return list(seen)

    try:
        yield read_kafka
    finally:
        await consumer.stop()


def marks_of(w: Writer, rule: str) -> list[Mark]:
    assert w.doc is not None
    return [m for m in w.doc.marks.values() if m.event.get("rule") == rule]


async def said(w: Writer, frame: Event) -> Event:
    """Send the writer's say; its ``doc.ignores`` (the answer to this frame)."""
    await w.send(frame)
    request_id = frame["request_id"]
    await w.until(
        lambda: w.of("doc.ignores", request_id=request_id) or w.of("error", request_id=request_id),
        f"the answer to {request_id}",
    )
    assert not w.of("error", request_id=request_id), w.of("error", request_id=request_id)
    return w.of("doc.ignores", request_id=request_id)[0]


async def feedback_metric(session: aiohttp.ClientSession, base: str) -> dict[tuple[str, str], int]:
    async with session.get(f"{base}/metrics") as res:
        text = await res.text()
    return {
        (s.labels["rule"], s.labels["action"]): int(s.value)
        for family in text_string_to_metric_families(text)
        if family.name == "amplify_suggestion_feedback"
        for s in family.samples
        if s.name == "amplify_suggestion_feedback_total"
    }


async def test_each_decision_is_one_feedback_outcome(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service(**FAST)
    async with AmplifyClient(svc.base) as client:
        user_id = (await client.register("ada", PASSWORD))["id"]
        token = await client.login("ada", PASSWORD)
        async with writer(session, svc.base, token) as w:
            doc = await w.open(TEXT)
            await w.settled()
            doc_id = doc.doc_id
            [big] = [m for m in marks_of(w, "plot.intensifier") if m.event["quote"] == "very big"]
            [tag] = marks_of(w, "dialogue.adverb_tag")
            [opening] = marks_of(w, "setting.opening")
            assert marks_of(w, "character.lookalike_names")
            # Dismissed; its rule off in this document; a name vouched for everywhere.
            await said(w, doc.dismiss(big.id, request_id="dismiss"))
            await said(w, doc.dismiss(opening.id, scope="document", request_id="off"))
            ignores = await said(w, doc.vouch("Maura", scope="everywhere", request_id="word"))
            assert doc.ignores == w.of("doc.ignores")[-1]  # the client keeps the last said
            assert [d["id"] for d in ignores["dismissed"]] == [big.id]
            assert (ignores["rules_off"], ignores["user"]["words"]) == (
                ["setting.opening"],
                ["Maura"],
            )
            assert not marks_of(w, "character.lookalike_names")
            # Accepted: the replacement typed over the quote.
            replacement = tag.event["replacement"]
            await w.edit(Change(tag.start_utf16, tag.end_utf16, replacement))
            await w.settled()
            assert "Tom said." in doc.text
        # A rule off over HTTP, on top of the word the socket added (kept: read, then PUT).
        prefs = await client.change_preferences(PreferenceChange(rules_off=("plot.passive",)))
        assert (prefs.rules_off, prefs.words) == (("plot.passive",), ("Maura",))

    def outcome(
        action: str,
        scope: str,
        rule: str | None = None,
        mark: Mark | None = None,
        word: str | None = None,
        on_doc: bool = True,
    ) -> tuple[Any, ...]:
        """As ``FIELDS`` orders them: a document's from its owner, with its provider."""
        focus, suggestion_id = (mark.event["focus"], mark.id) if mark else (None, None)
        where = (doc_id, "local") if on_doc else (None, None)
        return (action, scope, rule, focus, suggestion_id, *where, word)

    expected = [
        outcome("dismissed", "suggestion", "plot.intensifier", big),
        outcome("rule_off", "document", "setting.opening", opening),
        outcome("word_added", "everywhere", word="Maura"),
        outcome("accepted", "suggestion", "dialogue.adverb_tag", tag),
        outcome("rule_off", "everywhere", "plot.passive", on_doc=False),
    ]

    def compared(events: list[Event]) -> list[tuple[Any, ...]]:
        return sorted((tuple(e.get(f) for f in FIELDS) for e in events), key=repr)

    async with feedback_read(svc) as read:
        # The owner writes a document's feedback with its next checkpoint (every
        # doc_snapshot_ms): a bounded wait for all of it, then a while longer for a copy.
        deadline = time.monotonic() + 20
        events = await read()
        while len(events) < len(expected) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            events = await read()
        await asyncio.sleep(5 * FAST["doc_snapshot_ms"] / 1000)
        events = await read()
    assert compared(events) == sorted(expected, key=repr)
    assert {e["user_id"] for e in events} == {user_id}
    assert len({e.get("model") for e in events if e["doc_id"]}) == 1  # the document's source

    # watch's aggregates against the same events counted by hand.
    stats = OutcomeStats()
    for event in events:
        stats.add(event)
    summary = stats.snapshot(time.time())["suggestion_feedback"]
    by_rule: dict[str, Counter[str]] = {}
    for e in events:
        if e["rule"] is not None:
            by_rule.setdefault(e["rule"], Counter())[e["action"]] += 1
    assert set(summary["rules"]) == set(by_rule)
    for rule, counts in by_rule.items():
        answered = counts["accepted"] + counts["dismissed"] + counts["rule_off"]
        row = summary["rules"][rule]
        assert row["acceptance_rate"] == round(counts["accepted"] / answered, 4), rule
        assert row["dismissal_rate"] == round(
            (counts["dismissed"] + counts["rule_off"]) / answered, 4
        )
        assert {a: row[a] for a in counts} == dict(counts)
    assert summary["rules"]["dialogue.adverb_tag"]["acceptance_rate"] == 1.0
    assert summary["rules"]["plot.intensifier"]["dismissal_rate"] == 1.0
    assert summary["words"] == {"word_added": 1, "word_removed": 0}
    if svc.settings.bus == "kafka":  # and as the command reads the topic itself
        out = io.StringIO()
        options = WatchOptions(
            svc.settings.kafka_bootstrap_servers,
            svc.topics.outcomes,
            start="earliest",
            once=True,
            as_json=True,
        )
        async with asyncio.timeout(60):
            assert await watch(options, out) == 0
        assert json.loads(out.getvalue())["suggestion_feedback"] == summary

    # /metrics counts the same, once each (one process: the owner's and the gateway's).
    counted = Counter((e["rule"] or "", e["action"]) for e in events)
    assert await feedback_metric(session, svc.base) == dict(counted)
