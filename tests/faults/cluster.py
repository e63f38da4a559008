"""A three-node KRaft cluster of a test's own (``scripts/kafka.sh`` once per node, on free
ports, with the same jars as the shared broker), and what the cluster's metadata says of
it: who leads which partition, a topic's replicas and ``min.insync.replicas``, and the
means to put one broker in the lead of given partitions (a fault test kills that one).

Each node is ``process.roles=broker,controller`` and one of three voters; a broker that
stops heartbeating is fenced within ``BROKER_SESSION_TIMEOUT_MS``; the internal topics
(offsets, transaction state) have three replicas and the transaction log
``min.insync.replicas`` 2; the controller moves a partition's leadership to its preferred
replica (the first) within a second of its being elsewhere.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.protocol.admin import AlterPartitionReassignmentsRequest

from tests.faults.broker import run_script
from tests.support import free_port

SIZE = 3
# A killed broker is fenced (its partitions get new leaders) this long after its last
# heartbeat; the defaults (9 s and 2 s) would make the test wait for most of that.
BROKER_SESSION_TIMEOUT_MS = 3000
BROKER_HEARTBEAT_INTERVAL_MS = 500
HEAP = "384m"
NODE_PROPS = (
    f"broker.session.timeout.ms={BROKER_SESSION_TIMEOUT_MS}",
    f"broker.heartbeat.interval.ms={BROKER_HEARTBEAT_INTERVAL_MS}",
    # The preferred replica (the first) takes a partition's lead back within a second:
    # how lead_partitions moves leadership (aiokafka has no ElectLeaders request).
    "auto.leader.rebalance.enable=true",
    "leader.imbalance.check.interval.seconds=1",
    "leader.imbalance.per.broker.percentage=0",
)

TopicPartition = tuple[str, int]


def new_cluster_id() -> str:
    """What ``StorageTool random-uuid`` prints (a Kafka Uuid: 16 bytes, base64url), without
    a JVM."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


@dataclass
class Node:
    node_id: int
    port: int
    env: dict[str, str]
    killed_at: float | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass(frozen=True)
class PartitionState:
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


class Cluster:
    """Three brokers, each its own ``scripts/kafka.sh`` (its own ports and directory)."""

    def __init__(self, run: Path, size: int = SIZE) -> None:
        ports = [(free_port(), free_port()) for _ in range(size)]
        voters = ",".join(f"{i + 1}@127.0.0.1:{c}" for i, (_, c) in enumerate(ports))
        cluster_id = new_cluster_id()
        self.nodes = [
            Node(
                i + 1,
                port,
                {
                    **os.environ,
                    "KAFKA_NODE_ID": str(i + 1),
                    "KAFKA_PORT": str(port),
                    "CONTROLLER_PORT": str(controller),
                    "KAFKA_RUN": str(run / f"node-{i + 1}"),
                    "KAFKA_VOTERS": voters,
                    "KAFKA_CLUSTER_ID": cluster_id,
                    "KAFKA_REPLICAS": str(size),
                    "KAFKA_PROPS": "\n".join(NODE_PROPS),
                    "KAFKA_HEAP": HEAP,
                    "KAFKA_WAIT": "0",
                },
            )
            for i, (port, controller) in enumerate(ports)
        ]

    @property
    def bootstrap(self) -> str:
        return ",".join(n.address for n in self.nodes)

    @property
    def live(self) -> list[Node]:
        return [n for n in self.nodes if n.killed_at is None]

    def node(self, node_id: int) -> Node:
        (found,) = [n for n in self.nodes if n.node_id == node_id]
        return found

    async def start(self, timeout: float = 120) -> None:
        """Every node launched at once (a voter answers only once a quorum is up), then
        until the metadata lists them all as brokers."""
        await asyncio.gather(*(run_script("start", env=n.env) for n in self.nodes))
        deadline = time.monotonic() + timeout
        while len(await brokers(self.bootstrap)) < len(self.nodes):
            if time.monotonic() >= deadline:
                logs = [self.log_tail(n) for n in self.nodes]
                raise AssertionError(f"the cluster did not come up in {timeout} s: {logs}")
            await asyncio.sleep(0.5)

    async def kill(self, node_id: int) -> float:
        """SIGKILL the broker (a crash); the monotonic time of the kill."""
        node = self.node(node_id)
        await run_script("kill", env=node.env)
        node.killed_at = time.monotonic()
        return node.killed_at

    async def stop(self) -> None:
        """Every node killed: the data is thrown away, and a controlled shutdown of a
        cluster that lost a voter can wait long for its quorum."""
        await asyncio.gather(
            *(run_script("kill", env=n.env) for n in self.nodes), return_exceptions=True
        )

    def log_tail(self, node: Node, lines: int = 20) -> str:
        path = Path(node.env["KAFKA_RUN"]) / "kafka.log"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return f"(no {path})"


@contextlib.asynccontextmanager
async def _admin(bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # a dead broker in the bootstrap list is expected
    try:
        await admin.start()
        yield admin
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
        quiet.setLevel(level)


async def brokers(bootstrap: str) -> list[int]:
    """The brokers the cluster's metadata lists (live and unfenced), or none while it does
    not answer."""
    try:
        async with asyncio.timeout(8), _admin(bootstrap) as admin:
            cluster = await admin.describe_cluster()
        return sorted(b["node_id"] for b in cluster["brokers"])
    except Exception:
        return []


async def partitions(bootstrap: str, topics: Sequence[str]) -> dict[TopicPartition, PartitionState]:
    """Every partition of ``topics``: its leader (-1: none), replicas and in-sync replicas,
    as the metadata says."""
    async with asyncio.timeout(15), _admin(bootstrap) as admin:
        described = await admin.describe_topics(list(topics))
    found = {}
    for topic in described:
        assert topic["error_code"] == 0, f"{topic['topic']}: error {topic['error_code']}"
        for p in topic["partitions"]:
            found[(topic["topic"], p["partition"])] = PartitionState(
                p["leader"], tuple(p["replicas"]), tuple(p["isr"])
            )
    return found


async def topic_configs(bootstrap: str, topics: Iterable[str], name: str) -> dict[str, str]:
    """One setting of each topic (``min.insync.replicas``, say), as the brokers say."""
    found: dict[str, str] = {}
    async with asyncio.timeout(15), _admin(bootstrap) as admin:
        resources = [
            ConfigResource(ConfigResourceType.TOPIC, topic, configs={name: None})
            for topic in topics
        ]
        for response in await admin.describe_configs(resources):
            for res in response.resources:
                for entry in res[4]:
                    if entry[0] == name:
                        found[res[3]] = entry[1]
    return found


async def lead_partitions(
    bootstrap: str, wanted: Iterable[TopicPartition], broker: int, timeout: float = 30
) -> dict[TopicPartition, PartitionState]:
    """``broker`` in the lead of every partition ``wanted``: each one's replicas reordered
    so that ``broker`` comes first (the preferred replica; the same replicas, so no data
    moves), and the controller's leader rebalancing does the rest. Returns the partitions
    as they are then."""
    wanted = sorted(set(wanted))
    topics = sorted({t for t, _ in wanted})
    now = await partitions(bootstrap, topics)
    moves: dict[str, list[tuple[int, list[int], dict[int, bytes]]]] = {}
    for tp in wanted:
        replicas = list(now[tp].replicas)
        assert broker in replicas, f"{tp}: broker {broker} holds no replica ({replicas})"
        if replicas[0] != broker:
            order = [broker, *(r for r in replicas if r != broker)]
            moves.setdefault(tp[0], []).append((tp[1], order, {}))
    if moves:
        request = AlterPartitionReassignmentsRequest(
            timeout_ms=10_000,
            topics=[(topic, parts, {}) for topic, parts in moves.items()],  # type: ignore[misc]
            tags={},
        )
        async with asyncio.timeout(15), _admin(bootstrap) as admin:
            response = await admin._send_to_controller(request)
        answer = response.to_object()
        errors = [
            (t["name"], p["partition_index"], p["error_code"], p["error_message"])
            for t in answer["responses"]
            for p in t["partitions"]
            if p["error_code"]
        ]
        assert not answer["error_code"] and not errors, f"reassignment refused: {answer}"
    deadline = time.monotonic() + timeout
    while True:
        now = await partitions(bootstrap, topics)
        if all(now[tp].leader == broker for tp in wanted):
            return {tp: now[tp] for tp in wanted}
        if time.monotonic() >= deadline:
            elsewhere = {tp: now[tp].leader for tp in wanted if now[tp].leader != broker}
            raise AssertionError(f"broker {broker} did not take the lead of {elsewhere}")
        await asyncio.sleep(0.25)


async def new_leaders(
    bootstrap: str, wanted: Iterable[TopicPartition], dead: int, timeout: float
) -> dict[TopicPartition, PartitionState] | None:
    """Once every partition ``wanted`` has a leader other than ``dead``: the partitions
    then (None if that did not come about within ``timeout``)."""
    wanted = sorted(set(wanted))
    topics = sorted({t for t, _ in wanted})
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            now = await partitions(bootstrap, topics)
            if all(now[tp].leader not in (dead, -1) for tp in wanted):
                return {tp: now[tp] for tp in wanted}
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(0.1)
