"""Records no worker can read (not JSON, JSON of another shape) go to the dead-letter
topic with where they came from and why, and the service goes on: a story submitted
afterwards completes."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer

from tests.faults.conftest import (
    Counts,
    StackFactory,
    StoryView,
    TopicLog,
    eventually,
    new_user,
    read_until,
    report,
    story_text,
    summarize,
    ws_url,
)

POISON: tuple[tuple[bytes | None, bytes], ...] = (
    (b"poison-1", b"\xff\xfe this is not JSON {"),
    (b"poison-2", json.dumps({"type": "story.submitted", "story_id": 42}).encode()),
    (None, json.dumps({"hello": "world", "at": [1, 2, 3]}).encode()),
)
# Who reads each topic: the enhancer, the narrator, the projector.
TOPICS = ("stories", "segments", "outcomes")


@pytest.mark.kafka
@pytest.mark.timeout(180)
async def test_poison_records_go_to_the_dlq(stacks: StackFactory) -> None:
    name = "test_poison_records_go_to_the_dlq"
    stack = await stacks()
    gateway, *_ = await asyncio.gather(
        stack.gateway(),
        stack.worker("enhancer"),
        stack.worker("narrator"),
        stack.worker("projector"),
    )
    failures: list[str] = []
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks="all")
    await producer.start()
    sent: dict[tuple[str, int, int], bytes] = {}
    try:
        for topic in TOPICS:
            for key, value in POISON:
                meta = await producer.send_and_wait(stack.topic(topic), value, key=key)
                sent[(meta.topic, meta.partition, meta.offset)] = value
    finally:
        await producer.stop()
    async with (
        aiohttp.ClientSession() as session,
        TopicLog(stack.bootstrap, stack.topic("dlq"), isolation="read_uncommitted") as dlq,
        TopicLog(stack.bootstrap, stack.topic("outcomes")) as outcomes,
    ):

        def letters() -> dict[tuple[str, int, int], list[dict[str, Any]]]:
            found: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
            for event in dlq.events():
                where = (event.get("source_topic"), event.get("partition"), event.get("offset"))
                found.setdefault(where, []).append(event)
            return found

        await eventually(lambda: set(sent) <= set(letters()), timeout=30)
        await asyncio.sleep(1.0)  # a second letter for the same record would be right behind
        found = letters()
        for where, value in sent.items():
            got = found.get(where, [])
            if not got:
                failures.append(f"{where[0]} record {where[1]}-{where[2]} is not in the DLQ")
                continue
            letter = got[0]
            if letter.get("type") != "dead_letter":
                failures.append(f"{where}: the letter's type is {letter.get('type')}")
            if not isinstance(letter.get("error"), str) or not letter["error"]:
                failures.append(f"{where}: the letter has no error")
            payload = letter.get("payload")
            if not isinstance(payload, str) or base64.b64decode(payload) != value:
                failures.append(f"{where}: the letter's payload is not the record's bytes")
        # The service goes on.
        token = await new_user(session, gateway.base)
        view = StoryView()
        try:
            async with (
                asyncio.timeout(60),
                session.ws_connect(
                    ws_url(gateway.base), headers={"Authorization": f"Bearer {token}"}
                ) as ws,
            ):
                await ws.send_json({"type": "story.submit", "text": story_text(0)})
                await read_until(ws, view)
        except Exception as exc:
            failures.append(f"the story after the poison: {exc!r}")
        if view.completed is not None and view.completed.get("status") != "completed":
            failures.append(f"the story after the poison ended {view.completed.get('status')}")
        if view.story_id is not None:
            await outcomes.wait_completed([view.story_id], timeout=30, settle=0.5)
            if len(outcomes.completions(view.story_id)) != 1:
                failures.append(
                    f"the story after the poison has {len(outcomes.completions(view.story_id))} "
                    "story.completed on the outcome topic"
                )
            failures += view.check_against(outcomes)
        landed = sum(1 for where in sent if found.get(where))
        duplicated = sum(1 for where in sent if len(found.get(where, [])) > 1)
        per_topic = {
            t: sum(1 for where in sent if where[0] == stack.topic(t) and found.get(where))
            for t in TOPICS
        }
        counts = report(
            Counts(
                name,
                trials=len(POISON) * len(TOPICS),
                accepted=len(sent),
                completed=landed,
                lost=len(sent) - landed,
                duplicated=duplicated,
                details=[
                    "counts are of poison records: completed = in the DLQ; "
                    f"in the DLQ per topic: {per_topic}; the story afterwards: "
                    f"{(view.completed or {}).get('status')}",
                    *summarize(failures),
                ],
            )
        )
    assert counts.lost == 0
    assert counts.duplicated == 0
    assert not failures, "\n".join(failures[:20])
