"""Poison records on any consumed topic go to the dead-letter topic; consumers go on."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable

import aiohttp

from amplify_stream.gateway import keys
from tests.integration.conftest import Service
from tests.support import STORY, assert_story_stream, sign_up, ws_story

StartService = Callable[..., Awaitable[Service]]

POISON = [b"not json at all", json.dumps({"type": "story.submitted", "nope": 1}).encode()]


async def test_poison_records_land_in_the_dlq_and_service_goes_on(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service()
    bus, topics = svc.app[keys.BUS], svc.topics
    producer = bus.producer()
    await producer.start()
    try:
        sent = []
        for topic in (topics.stories, topics.segments):
            for payload in POISON:
                position = await producer.send_and_wait(topic, "poison-key", payload)
                sent.append((topic, position.partition, position.offset, payload))
    finally:
        await producer.stop()
    letters = []
    begins = await bus.begin_offsets(topics.dlq)
    async with asyncio.timeout(30), bus.read(topics.dlq, begins) as records:
        async for record in records:
            letters.append(json.loads(record.value))
            if len(letters) == len(sent):
                break
    found = {(d["source_topic"], d["partition"], d["offset"]) for d in letters}
    assert found == {(t, p, o) for t, p, o, _ in sent}
    for letter in letters:
        assert letter["type"] == "dead_letter" and letter["error"]
        original = next(
            x
            for t, p, o, x in sent
            if (t, p, o) == (letter["source_topic"], letter["partition"], letter["offset"])
        )
        assert base64.b64decode(letter["payload"]) == original
    # The consumers are still serving.
    token = await sign_up(session, svc.base, "ada")
    assert_story_stream(await ws_story(session, svc.base, token, {"text": STORY}), STORY)
