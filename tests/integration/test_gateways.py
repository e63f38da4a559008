"""Several gateways on one Kafka cluster: each reads its home slice of the stream and
what its sockets watch, and a story keeps streaming, whole and once, to sockets on two
gateways while a third joins and leaves (the slices move under it)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from amplify_stream.gateway import keys
from amplify_stream.gateway.relay import RelayHub
from tests.integration.conftest import Service
from tests.support import STORY, sign_up, wait_until

StartService = Callable[..., Awaitable[Service]]
PARTITIONS = 4
# A story slow enough (a piece a sentence, 80 ms apart: about 3 s) that a gateway
# joins and leaves while it streams.
SETTINGS = {"stream_partitions": PARTITIONS, "relay_linger_s": 0.2, "local_piece_delay_ms": 80}
TEXT = " ".join([STORY] * 6)


@pytest.fixture
def bus_kind(kafka_bootstrap: str) -> str:
    return "kafka"  # one bus shared by separate gateways: the memory bus is one process


def socket_url(svc: Service) -> str:
    return svc.base.replace("http", "ws", 1) + "/v1/stream"


def relay(svc: Service) -> RelayHub:
    return svc.app[keys.RELAY]


def settled(hubs: list[RelayHub]) -> bool:
    """Every partition home to one relay, each reading (at least) its home."""
    homes = [hub.home for hub in hubs]
    return (
        sum(map(len, homes)) == PARTITIONS
        and frozenset().union(*homes) == frozenset(range(PARTITIONS))
        and all(hub.home <= hub.reading for hub in hubs)
    )


async def frames(ws: aiohttp.ClientWebSocketResponse, into: list[dict[str, Any]]) -> None:
    async for msg in ws:
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        into.append(json.loads(msg.data))
        if into[-1]["type"] == "story.completed":
            return


async def test_a_story_streams_whole_while_gateways_join_and_leave(
    service: StartService, session: aiohttp.ClientSession
) -> None:
    first, second = await service(**SETTINGS), await service(**SETTINGS)
    await wait_until(lambda: settled([relay(first), relay(second)]), "two slices", timeout=30)
    token = await sign_up(session, first.base, "ada")
    headers = {"Authorization": f"Bearer {token}"}
    here: list[dict[str, Any]] = []
    there: list[dict[str, Any]] = []
    async with (
        asyncio.timeout(90),
        session.ws_connect(socket_url(first), headers=headers) as a,
        session.ws_connect(socket_url(second), headers=headers) as b,
    ):
        await a.send_json({"type": "story.submit", "text": TEXT, "audio": False})
        reading = asyncio.create_task(frames(a, here))
        await wait_until(lambda: len(here) > 3, "the story under way")
        story_id = here[0]["story_id"]
        partition = int(here[1]["cursor"].split("-")[0])
        # Minted into the home slice of the gateway that accepted it.
        assert partition in relay(first).home
        assert partition not in relay(second).home
        # The other gateway follows it from the start: it reads that partition now.
        await b.send_json({"type": "story.resume", "story_id": story_id})
        following = asyncio.create_task(frames(b, there))
        await wait_until(lambda: partition in relay(second).reading, "the second reading it")
        # A third gateway's relay joins: the slices move while the story streams; then
        # it leaves.
        hubs = [relay(first), relay(second)]
        homes = [hub.home for hub in hubs]
        stream = first.topics.stream
        group = f"{first.settings.topic_prefix}.gateways"
        third = RelayHub(first.app[keys.BUS], stream, group_id=group, linger_s=0.2)
        await third.start()
        await wait_until(lambda: settled([*hubs, third]), "three slices", timeout=30)
        assert [hub.home for hub in hubs] != homes
        await third.stop()
        await wait_until(lambda: settled(hubs), "two slices again", timeout=30)
        assert not reading.done(), "the story ended before the slices moved: nothing tested"
        await asyncio.gather(reading, following)
    assert here[-1]["status"] == "completed", here[-1]
    streamed = [e["cursor"] for e in here[1:]]
    assert len(set(streamed)) == len(streamed)
    assert streamed == sorted(streamed, key=lambda c: int(c.split("-")[1]))
    # The socket on the other gateway heard every event, once, in the same order.
    assert [e["cursor"] for e in there if "cursor" in e] == streamed
