"""``amplify-stream watch``: a downstream analytics consumer of the outcome topic.

It reads ``amplify.outcomes.v1`` as any analytics team would: its own consumer group,
``read_committed`` (aborted transactions never count), and shows the aggregates of
``amplify_stream.analytics`` every interval. Kafka only: a memory bus lives inside its
``serve`` process, where no outside reader can see it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, TextIO

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from amplify_stream.analytics import OutcomeStats, render
from amplify_stream.config.groups import BusSettings

Start = Literal["earliest", "latest"] | float  # a float is epoch seconds
CLEAR_SCREEN = "\x1b[H\x1b[2J"


class MissingTopic(Exception):
    pass


@dataclass(frozen=True, slots=True)
class WatchOptions:
    bootstrap_servers: str
    topic: str
    # None: a throwaway group that commits nothing.
    group: str | None = None
    # None: the group's committed offsets, else the latest.
    start: Start | None = None
    interval_s: float = 1.0
    duration_s: float | None = None
    once: bool = False
    as_json: bool = False
    window_s: float = 60.0


def parse_start(value: str) -> Start:
    if value in ("earliest", "latest"):
        return value  # type: ignore[return-value]
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"--from takes earliest, latest or an ISO 8601 time, not {value!r}"
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # the topic's timestamps are UTC
    return moment.timestamp()


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    watch = sub.add_parser("watch", help="live aggregates of the outcome topic (Kafka)")
    watch.add_argument("--group", help="consumer group (default: a new amplify.watch.<random>)")
    watch.add_argument(
        "--from",
        dest="start",
        type=parse_start,
        help="earliest, latest or an ISO 8601 time (default: the group's offsets, else latest)",
    )
    watch.add_argument("--json", action="store_true", help="one JSON object per interval")
    watch.add_argument("--once", action="store_true", help="read up to the end, print, exit")
    watch.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    watch.add_argument("--interval", type=float, default=1.0, metavar="S")
    watch.add_argument("--bootstrap-servers", help="default: AMPLIFY_KAFKA_BOOTSTRAP_SERVERS")
    watch.add_argument("--topic", help="default: the outcome topic of AMPLIFY_TOPIC_PREFIX")


def run(args: argparse.Namespace, settings: BusSettings) -> int:
    if settings.bus == "memory":
        print(
            "note: AMPLIFY_BUS is memory; only a Kafka-backed service publishes outcomes "
            f"to {settings.kafka_bootstrap_servers}",
            file=sys.stderr,
        )
    options = WatchOptions(
        bootstrap_servers=args.bootstrap_servers or settings.kafka_bootstrap_servers,
        topic=args.topic or settings.topic("outcomes"),
        group=args.group,
        start=args.start,
        interval_s=args.interval,
        duration_s=args.duration,
        once=args.once,
        as_json=args.json,
    )
    try:
        return asyncio.run(watch(options, sys.stdout))
    except (MissingTopic, KafkaError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


class _StartAt(ConsumerRebalanceListener):  # type: ignore[misc]
    """Moves each partition to its ``--from`` offset the first time this member gets it;
    later rebalances keep the position (or the group's commit) as it is. The offsets are
    looked up before joining: the listener only seeks (no broker round trip while the
    group waits on it)."""

    def __init__(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        self._consumer = consumer
        self._offsets = offsets

    async def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
        pass

    async def on_partitions_assigned(self, assigned: Collection[TopicPartition]) -> None:
        for tp in assigned:
            if (offset := self._offsets.pop(tp, None)) is not None:
                self._consumer.seek(tp, offset)


async def _partitions(options: WatchOptions) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=options.bootstrap_servers, client_id="amplify-watch"
    )
    await admin.start()
    try:
        # Describing (or subscribing to) a missing topic would have the broker create it,
        # with its defaults instead of the service's partitions and retention.
        if options.topic not in await admin.list_topics():
            raise MissingTopic(
                f"the topic {options.topic} does not exist: is the service running on Kafka "
                "(`amplify-stream topics create` makes the topics)?"
            )
        [described] = await admin.describe_topics([options.topic])
        return [TopicPartition(options.topic, p["partition"]) for p in described["partitions"]]
    finally:
        await admin.close()


async def _start_offsets(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition], start: Start | None
) -> dict[TopicPartition, int]:
    if start is None:
        return {}
    ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
    if start == "latest":
        return ends
    if start == "earliest":
        begins: dict[TopicPartition, int] = await consumer.beginning_offsets(tps)
        return begins
    found = await consumer.offsets_for_times({tp: int(start * 1000) for tp in tps})
    # No record that recent yet: from the end.
    return {tp: ends[tp] if found.get(tp) is None else found[tp].offset for tp in tps}


async def watch(options: WatchOptions, out: TextIO) -> int:
    tps = await _partitions(options)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=options.bootstrap_servers,
        group_id=options.group or f"amplify.watch.{uuid.uuid4().hex[:12]}",
        client_id="amplify-watch",
        isolation_level="read_committed",
        # A throwaway group's offsets would only litter the broker.
        enable_auto_commit=options.group is not None,
        auto_offset_reset="earliest" if options.start == "earliest" else "latest",
    )
    await consumer.start()
    try:
        offsets = await _start_offsets(consumer, tps, options.start)
        consumer.subscribe([options.topic], listener=_StartAt(consumer, offsets))
        await _consume(consumer, options, out)
    finally:
        await consumer.stop()
    return 0


async def _consume(consumer: AIOKafkaConsumer, options: WatchOptions, out: TextIO) -> None:
    stats = OutcomeStats(window_s=options.window_s)
    loop = asyncio.get_running_loop()
    started = loop.time()
    next_tick = started + options.interval_s
    targets: dict[TopicPartition, int] | None = None
    while True:
        wait_ms = max(0, int((next_tick - loop.time()) * 1000))
        batches = await consumer.getmany(timeout_ms=min(wait_ms, 1000))
        for records in batches.values():
            for record in records:
                try:
                    event = json.loads(record.value)
                except (TypeError, ValueError):
                    continue  # not ours to judge: the DLQ is the producers' business
                if isinstance(event, dict):
                    stats.add(event)
        if options.once:
            if targets is None and consumer.assignment():
                assigned = list(consumer.assignment())
                targets = await consumer.end_offsets(assigned)  # the end as of now
            if targets is not None and await _reached(consumer, targets):
                _emit(stats, options, out)
                return
        now = loop.time()
        if options.duration_s is not None and now - started >= options.duration_s:
            _emit(stats, options, out)
            return
        if now >= next_tick and not options.once:
            _emit(stats, options, out)
            next_tick = max(next_tick + options.interval_s, now)


async def _reached(consumer: AIOKafkaConsumer, targets: dict[TopicPartition, int]) -> bool:
    assigned = consumer.assignment()  # a rebalance may have moved some elsewhere
    for tp, end in targets.items():
        if tp in assigned and await consumer.position(tp) < end:
            return False
    return True


def _emit(stats: OutcomeStats, options: WatchOptions, out: TextIO) -> None:
    snapshot = stats.snapshot(time.time())
    if options.as_json:
        out.write(json.dumps(snapshot, separators=(",", ":")) + "\n")
    elif out.isatty():
        out.write(CLEAR_SCREEN + render(snapshot) + "\n")
    else:
        out.write(render(snapshot) + "\n\n")
    out.flush()
