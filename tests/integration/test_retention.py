"""What the bus has let go cannot be resumed, on either bus: a story whose stream records
are past the partition's log start answers ``cursor_expired`` (410 over HTTP, an error
frame on the socket), its result still read from ``GET /v1/stories/{id}``; a reader
from an offset below the log start gets the earliest record there is.

The memory bus lets records go by its own retention (here a topic's retention shortened,
as an operator alters a topic's configuration, and the next record of the partition);
Kafka's time retention runs every few minutes on closed segments, so on Kafka the log
start is moved with the admin API's DeleteRecords, which is what retention does to it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import cast

import aiohttp
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from aiokafka.structs import TopicPartition as KafkaTopicPartition

from amplify_stream.bus.base import TopicSpec
from amplify_stream.bus.memory import MemoryBus
from amplify_stream.bus.partitioner import partition_for_key
from amplify_stream.events import headers_for
from amplify_stream.gateway import keys
from tests.integration.conftest import Service
from tests.support import sign_up, ws_story

StartService = Callable[..., Awaitable[Service]]
SHORT = 'Mara opened the door. "Hello," she said quietly. The wind was cold.'


async def move_log_start(svc: Service, topic: str, partition: int) -> int:
    """Let every record of ``topic[partition]`` so far go, then write one more (that no
    story watches); the new log start, where that record is."""
    bus = svc.app[keys.BUS]
    ends = await bus.end_offsets(topic)
    end, parts = ends[partition], len(ends)
    if svc.settings.bus == "memory":
        # Every record so far older than 1 ms: the next append of the partition lets
        # them go.
        await cast(MemoryBus, bus).ensure_topics([TopicSpec(topic, parts, retention_ms=1)])
        await asyncio.sleep(0.01)
    else:
        admin = AIOKafkaAdminClient(bootstrap_servers=svc.settings.kafka_bootstrap_servers)
        await admin.start()
        try:
            tp = KafkaTopicPartition(topic, partition)
            await admin.delete_records({tp: RecordsToDelete(before_offset=end)})
        finally:
            await admin.close()
    key = next(f"k{n}" for n in range(1000) if partition_for_key(f"k{n}", parts) == partition)
    producer = bus.producer()
    await producer.start()
    try:
        await producer.send_and_wait(topic, key, b"{}", headers_for("retention.probe"))
    finally:
        await producer.stop()
    begin = (await bus.begin_offsets(topic))[partition]
    assert begin == end
    return begin


async def test_a_story_past_the_log_start_answers_cursor_expired(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    svc = await service()
    token = await sign_up(session, svc.base, "ada")
    events = await ws_story(session, svc.base, token, {"text": SHORT, "audio": False})
    assert events[-1]["status"] == "completed"
    story_id, cursor = events[1]["story_id"], events[1]["cursor"]
    partition = int(cursor.split("-")[0])
    stream = svc.topics.stream
    begin = await move_log_start(svc, stream, partition)

    # A reader below the log start reads from the earliest record there is.
    bus = svc.app[keys.BUS]
    async with asyncio.timeout(20), bus.read(stream, {partition: 0}) as records:
        first = await anext(aiter(records))
    assert first.offset == begin

    auth = {"Authorization": f"Bearer {token}"}
    sse = {**auth, "Accept": "text/event-stream"}
    base = f"{svc.base}/v1/stories/{story_id}"
    for url, headers in (
        (f"{base}/events?cursor={cursor}", sse),
        (f"{base}/events", sse),
        (f"{base}/events", {**sse, "Last-Event-ID": cursor}),
    ):
        async with session.get(url, headers=headers) as res:
            assert res.status == 410, (url, await res.text())
            assert (await res.json())["error"]["code"] == "cursor_expired"
    url = svc.base.replace("http", "ws", 1) + "/v1/stream"
    async with asyncio.timeout(20), session.ws_connect(url, headers=auth) as ws:
        for frame in (
            {"type": "story.resume", "story_id": story_id, "cursor": cursor},
            {"type": "story.resume", "story_id": story_id},
        ):
            await ws.send_json(frame)
            answer = await ws.receive_json()
            assert (answer["type"], answer["code"]) == ("error", "cursor_expired"), answer
    # The result stays where it always is.
    async with session.get(base, headers=auth) as res:
        assert res.status == 200
        assert (await res.json())["status"] == "completed"
