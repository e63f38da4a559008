"""Records no worker can read (not JSON, JSON of another shape) go to the dead-letter
topic with where they came from and why, and the service goes on: a story submitted
afterwards completes."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any, cast

import pytest
from aiokafka import AIOKafkaProducer

from tests.faults.report import Counts, report, summarize
from tests.faults.scenario import Scenario, eventually, story_text
from tests.faults.stack import Stack
from tests.faults.topics import TopicLog

POISON: tuple[tuple[bytes | None, bytes], ...] = (
    (b"poison-1", b"\xff\xfe this is not JSON {"),
    (b"poison-2", json.dumps({"type": "story.submitted", "story_id": 42}).encode()),
    (None, json.dumps({"hello": "world", "at": [1, 2, 3]}).encode()),
)
# Who reads each topic: the enhancer, the narrator, the projector.
TOPICS = ("stories", "segments", "outcomes")

# Where a record was: (topic, partition, offset).
Where = tuple[str, int, int]


@pytest.mark.kafka
@pytest.mark.timeout(180)
async def test_poison_records_go_to_the_dlq(scenario: Scenario) -> None:
    await scenario.start(workers=["enhancer", "narrator", "projector"])
    sent = await send_poison(scenario.stack)
    dlq = await scenario.read_topic("dlq", isolation="read_uncommitted")
    await eventually(lambda: set(sent) <= set(letters(dlq)), timeout=30)
    await asyncio.sleep(1.0)  # a second letter for the same record would be right behind
    found = letters(dlq)
    check_letters(scenario, sent, found)

    # The service goes on.
    after = scenario.trial(0, each_s=60)
    async with after:
        await after.submit(story_text(0))
        await after.read_to_end()
    view = after.view
    if view.completed is not None and view.completed.get("status") != "completed":
        scenario.fail(f"the story after the poison ended {view.completed.get('status')}")
    if view.story_id is not None:
        await scenario.settle(timeout=30, settle=0.5)
        if len(scenario.outcomes.completions(view.story_id)) != 1:
            scenario.fail(
                "the story after the poison has "
                f"{len(scenario.outcomes.completions(view.story_id))} "
                "story.completed on the outcome topic"
            )
        scenario.check_views()

    landed = sum(1 for where in sent if found.get(where))
    duplicated = sum(1 for where in sent if len(found.get(where, [])) > 1)
    per_topic = {
        t: sum(1 for where in sent if where[0] == scenario.stack.topic(t) and found.get(where))
        for t in TOPICS
    }
    counts = report(
        Counts(
            scenario.name,
            trials=len(POISON) * len(TOPICS),
            accepted=len(sent),
            completed=landed,
            lost=len(sent) - landed,
            duplicated=duplicated,
            details=[
                "counts are of poison records: completed = in the DLQ; "
                f"in the DLQ per topic: {per_topic}; the story afterwards: "
                f"{(view.completed or {}).get('status')}",
                *summarize(scenario.failures),
            ],
        )
    )
    assert counts.lost == 0
    assert counts.duplicated == 0
    assert not scenario.failures, "\n".join(scenario.failures[:20])


async def send_poison(stack: Stack) -> dict[Where, bytes]:
    """The fault: each poison record on each worker's input topic; where each landed."""
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks="all")
    await producer.start()
    sent: dict[Where, bytes] = {}
    try:
        for topic in TOPICS:
            for key, value in POISON:
                meta = await producer.send_and_wait(stack.topic(topic), value, key=key)
                sent[(meta.topic, meta.partition, meta.offset)] = value
    finally:
        await producer.stop()
    return sent


def letters(dlq: TopicLog) -> dict[Where, list[dict[str, Any]]]:
    """The dead letters so far, by where their record was."""
    found: dict[Where, list[dict[str, Any]]] = {}
    for event in dlq.events():
        fields = (event.get("source_topic"), event.get("partition"), event.get("offset"))
        where = cast(Where, fields)  # None where a letter lacks one: it matches no record
        found.setdefault(where, []).append(event)
    return found


def check_letters(
    scenario: Scenario, sent: dict[Where, bytes], found: dict[Where, list[dict[str, Any]]]
) -> None:
    """Each record has its letter: a dead_letter with an error and the record's bytes."""
    for where, value in sent.items():
        got = found.get(where, [])
        if not got:
            scenario.fail(f"{where[0]} record {where[1]}-{where[2]} is not in the DLQ")
            continue
        letter = got[0]
        if letter.get("type") != "dead_letter":
            scenario.fail(f"{where}: the letter's type is {letter.get('type')}")
        if not isinstance(letter.get("error"), str) or not letter["error"]:
            scenario.fail(f"{where}: the letter has no error")
        payload = letter.get("payload")
        if not isinstance(payload, str) or base64.b64decode(payload) != value:
            scenario.fail(f"{where}: the letter's payload is not the record's bytes")
