"""What acks=all costs the stream topic's tokens (issue 25), beside the acks=1 it replaced,
on a three-broker KRaft cluster started here (``tests/faults/cluster.py``: three JVMs of
the same jars), the topic made as the service makes it (three replicas,
``min.insync.replicas`` 2).

Stream records are produced at a token rate as workers do (``linger_ms`` 2, never awaited
one by one) and read as a gateway's relay reads them (read_uncommitted, from the end).
Per record: the token latency (produced to read) and the producer's acknowledgement
latency. The two ways take turns for several rounds, so their ratio is of one run.

A consumer reads only up to the high watermark, which moves once every in-sync replica has
the record, whatever the producer's acks: so the token latency should barely move, and
the acknowledgement (awaited only when a story ends) carries the replication.

``python -m benchmarks.stream_acks [--rate 600] [--seconds 5] [--rounds 3] [--out FILE]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import struct
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from amplify_stream.bus import create_bus
from amplify_stream.bus.base import TopicSpec
from amplify_stream.config import Settings
from benchmarks.measure import percentiles
from tests.faults.cluster import Cluster, partitions, topic_configs

PARTITIONS = 16
RECORD_BYTES = 200  # an enhancement.delta of a few tokens, JSON
WAYS: dict[str, dict[str, Any]] = {
    "acks=1 (before)": {"acks": 1, "enable_idempotence": False},
    "acks=all, idempotent (after)": {"acks": "all", "enable_idempotence": True},
}


async def one_way(
    bootstrap: str, topic: str, config: dict[str, Any], rate: float, seconds: float
) -> dict[str, Any]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2, **config)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level="read_uncommitted", auto_offset_reset="latest"
    )
    await producer.start()
    await consumer.start()
    token_ms: list[float] = []
    ack_ms: list[float] = []
    total = round(rate * seconds)
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        await consumer.seek_to_end()
        for tp in consumer.assignment():
            await consumer.position(tp)

        async def read() -> None:
            while len(token_ms) < total:
                batch = await consumer.getmany(timeout_ms=200)
                now = time.perf_counter_ns()
                for records in batch.values():
                    for record in records:
                        (sent,) = struct.unpack_from(">q", record.value or b"")
                        token_ms.append((now - sent) / 1e6)

        reader = asyncio.create_task(read())
        acks = []
        loop = asyncio.get_running_loop()
        began = loop.time()
        padding = b" " * (RECORD_BYTES - 8)
        for i in range(total):
            await asyncio.sleep(max(0.0, began + i / rate - loop.time()))
            sent = time.perf_counter_ns()
            future = await producer.send(
                topic, struct.pack(">q", sent) + padding, key=f"s{i % 20}".encode()
            )
            future.add_done_callback(
                lambda _f, sent=sent: ack_ms.append((time.perf_counter_ns() - sent) / 1e6)
            )
            acks.append(future)
        await asyncio.gather(*acks)
        async with asyncio.timeout(30):
            await reader
    finally:
        await producer.stop()
        await consumer.stop()
    return {"token_ms": percentiles(token_ms), "ack_ms": percentiles(ack_ms)}


async def measure(rate: float, seconds: float, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="stream-acks-") as run:
        cluster = Cluster(Path(run))
        try:
            await cluster.start()
            settings = Settings(
                bus="kafka",
                kafka_bootstrap_servers=cluster.bootstrap,
                topic_prefix=f"bench-acks-{uuid.uuid4().hex[:6]}",
                jwt_secret="bench-" + "x" * 40,
            )
            bus = create_bus(settings)
            await bus.start()
            topic = settings.topic("stream")
            try:
                await bus.ensure_topics([TopicSpec(topic, PARTITIONS)])
            finally:
                await bus.close()
            replicas = {
                len(p.replicas) for p in (await partitions(cluster.bootstrap, [topic])).values()
            }
            in_sync = await topic_configs(cluster.bootstrap, [topic], "min.insync.replicas")
            for config in WAYS.values():  # warm-up, not counted: connections, metadata
                await one_way(cluster.bootstrap, topic, config, rate, 1.0)
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in WAYS}
            for _ in range(rounds):
                for name, config in WAYS.items():
                    runs[name].append(
                        await one_way(cluster.bootstrap, topic, config, rate, seconds)
                    )
        finally:
            await cluster.stop()
    return {
        "brokers": len(cluster.nodes),
        "replicas": sorted(replicas),
        "min_insync_replicas": in_sync.get(topic),
        "partitions": PARTITIONS,
        "rate": rate,
        "seconds": seconds,
        "rounds": rounds,
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=600)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = asyncio.run(measure(args.rate, args.seconds, args.rounds))
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
