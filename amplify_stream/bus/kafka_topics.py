"""Topic administration for the Kafka bus: create, wait until led, know partition counts.

A metadata request for a missing topic makes a broker with ``auto.create.topics.enable``
create it with the broker's own partition count (aiokafka always asks with
``allow_auto_topic_creation``). So a topic the bus needs is created explicitly first,
with the configured count, and only then described.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError, for_code

from amplify_stream.bus.base import TopicSpec

log = logging.getLogger(__name__)

TOPIC_READY_TIMEOUT_S = 30.0


class KafkaTopics:
    def __init__(self, admin: AIOKafkaAdminClient, default_partitions: int) -> None:
        self._admin = admin
        self._default_partitions = default_partitions
        # Partition counts of topics seen ready. The design never adds partitions (that
        # would move keys), so a count stays right for the life of the process.
        self._known: dict[str, int] = {}

    async def ensure(self, specs: Sequence[TopicSpec], *, strict: bool = True) -> None:
        """Create the missing topics and wait until every partition has a leader.
        ``strict``: raise the broker's error for a topic it would not create."""
        if not specs:
            return
        brokers = len((await self._admin.describe_cluster())["brokers"])
        # CreateTopics v3 (aiokafka's newest) cannot ask for the broker's default factor.
        replicas = max(1, min(3, brokers))
        response = await self._admin.create_topics(
            [
                NewTopic(
                    spec.name,
                    spec.partitions,
                    replicas,
                    topic_configs=topic_configs(spec, replicas),
                )
                for spec in specs
            ]
        )
        existing = []
        for error in response.to_object()["topic_errors"]:
            code = error["error_code"]
            if code == TopicAlreadyExistsError.errno:
                existing.append(error["topic"])
            elif strict and code != 0:
                raise for_code(code)(f"{error['topic']}: {error.get('error_message')}")
        await self._wait_until_ready([spec.name for spec in specs])
        if strict and existing and replicas >= 3:
            for finding in await self.weaker_than_created(existing, replicas):
                log.warning("a topic is less durable than the service creates it: %s", finding)

    async def weaker_than_created(self, names: Sequence[str], replicas: int) -> list[str]:
        """What makes topics that already existed (made by hand, or by a deployment of
        one broker that grew) less durable than ``topic_configs`` would make them now:
        fewer replicas, or fewer of them needed in sync before an acks=all write counts."""
        described = await self._admin.describe_topics(list(names))
        factors = {t["topic"]: min(len(p["replicas"]) for p in t["partitions"]) for t in described}
        resources = [
            ConfigResource(ConfigResourceType.TOPIC, name, configs={"min.insync.replicas": None})
            for name in names
        ]
        in_sync = {}
        for response in await self._admin.describe_configs(resources):
            for resource in response.resources:
                for entry in resource[4]:
                    if entry[0] == "min.insync.replicas":
                        in_sync[resource[3]] = int(entry[1])
        return weaker(factors, in_sync, replicas)

    async def partitions(self, names: Sequence[str]) -> dict[str, int]:
        """Partition counts; a topic that does not exist yet is created with the default
        count, as the memory bus does on first use. Without the right to create topics,
        an existing topic is still found."""
        unknown = [name for name in dict.fromkeys(names) if name not in self._known]
        if unknown:
            specs = [TopicSpec(name, self._default_partitions) for name in unknown]
            await self.ensure(specs, strict=False)
        return {name: self._known[name] for name in names}

    async def _wait_until_ready(self, names: Sequence[str]) -> None:
        pending = set(names)
        try:
            async with asyncio.timeout(TOPIC_READY_TIMEOUT_S):
                while True:
                    for topic in await self._admin.describe_topics(sorted(pending)):
                        partitions = topic["partitions"]
                        if (
                            topic["error_code"] == 0
                            and partitions
                            and all(p["error_code"] == 0 and p["leader"] >= 0 for p in partitions)
                        ):
                            self._known[topic["topic"]] = len(partitions)
                            pending.discard(topic["topic"])
                    if not pending:
                        return
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise TimeoutError(
                f"topics {sorted(pending)} not ready after {TOPIC_READY_TIMEOUT_S} s"
            ) from None


# With three replicas, an acks=all write is acknowledged once two hold it: one broker
# can die without losing it, and a second's loss stops writes rather than risking them
# (the broker's default of 1 lets a leader alone acknowledge, and lose, a write).
MIN_INSYNC_REPLICAS = 2


def topic_configs(spec: TopicSpec, replicas: int) -> dict[str, str]:
    """The configuration a topic is created with, on a cluster giving it ``replicas``."""
    configs: dict[str, str] = {}
    if spec.compacted:
        configs["cleanup.policy"] = "compact"
    elif spec.retention_ms is not None:
        configs["retention.ms"] = str(spec.retention_ms)
    if replicas >= 3:
        configs["min.insync.replicas"] = str(MIN_INSYNC_REPLICAS)
    return configs


def weaker(factors: dict[str, int], in_sync: dict[str, int], replicas: int) -> list[str]:
    """Per topic, how its replication factor and ``min.insync.replicas`` fall short of
    what ``topic_configs`` gives a new topic on a cluster giving it ``replicas``."""
    wanted = int(topic_configs(TopicSpec("", 1), replicas).get("min.insync.replicas", 1))
    findings = []
    for name in sorted(factors):
        short = []
        if factors[name] < replicas:
            short.append(f"replication factor {factors[name]} (new topics get {replicas})")
        if in_sync.get(name, 1) < wanted:
            short.append(
                f"min.insync.replicas {in_sync.get(name, 1)} (new topics get {wanted}: "
                "an acks=all write can be acknowledged by a leader alone, and lost with it)"
            )
        if short:
            findings.append(f"{name}: " + ", ".join(short))
    return findings


async def delete_topics(servers: str, prefix: str) -> None:
    """Every topic whose name starts with ``prefix``: what a finished test or benchmark
    stack leaves on a shared broker (thousands of idle partitions cost it CPU)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    try:
        await admin.start()
        names = [name for name in await admin.list_topics() if name.startswith(prefix)]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()
