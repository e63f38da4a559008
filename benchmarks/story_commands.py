"""What committing story commands in transactions costs (issue 25, producers/commands.py),
beside the idempotent send it replaced: one topic on the real broker, commands posted at a
fixed open-loop rate, each way in turn for several rounds, so the ways share the machine's
noise and their ratios are of one run.

``python -m benchmarks.story_commands [--rate 200] [--seconds 2] [--rounds 3] [--out FILE]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from amplify_stream.bus import create_bus
from amplify_stream.bus.base import Position, TopicSpec
from amplify_stream.bus.kafka_topics import delete_topics
from amplify_stream.config import Settings
from benchmarks.measure import percentiles
from benchmarks.stack import KAFKA
from producers.commands import CommandPublisher

STORY_BYTES = 600  # a short story's command
PARTITIONS = 6

Send = Callable[[int], Awaitable[Position]]


async def open_loop(send: Send, rate: float, seconds: float) -> list[float]:
    """Latencies (ms) of ``rate * seconds`` sends started every ``1 / rate`` s."""
    latencies: list[float] = []

    async def one(i: int) -> None:
        start = time.perf_counter()
        await send(i)
        latencies.append((time.perf_counter() - start) * 1000)

    loop = asyncio.get_running_loop()
    began = loop.time()
    tasks = []
    for i in range(round(rate * seconds)):
        await asyncio.sleep(max(0.0, began + i / rate - loop.time()))
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    return latencies


async def measure(rate: float, seconds: float, rounds: int) -> dict[str, Any]:
    settings = Settings(
        bus="kafka",
        kafka_bootstrap_servers=KAFKA,
        topic_prefix=f"bench-cmd-{uuid.uuid4().hex[:6]}",
        jwt_secret="bench-" + "x" * 40,
    )
    bus = create_bus(settings)
    await bus.start()
    topic = settings.topic("stories")
    await bus.ensure_topics([TopicSpec(topic, PARTITIONS)])
    value = b"x" * STORY_BYTES
    publishers = {
        f"transactions, {k} producer{'s' if k > 1 else ''}": CommandPublisher(
            [bus.producer(transactional_id=f"{topic}.{k}.{i}") for i in range(k)],
            bus,
            commit_wait_s=15,
            settle_s=60,
        )
        for k in (1, 3)
    }
    plain = bus.producer()
    ways: dict[str, Send] = {name: _publish(p, topic, value) for name, p in publishers.items()}
    ways["idempotent send (before)"] = lambda i: plain.send_and_wait(topic, f"k{i}", value)
    try:
        await plain.start()
        for publisher in publishers.values():
            await publisher.start()
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in ways}
        for _ in range(rounds):
            for name, send in ways.items():
                runs[name].append(percentiles(await open_loop(send, rate, seconds)))
    finally:
        for publisher in publishers.values():
            await publisher.stop()
        await plain.stop()
        await bus.close()
        await delete_topics(KAFKA, settings.topic_prefix)
    return {"rate": rate, "seconds": seconds, "rounds": rounds, "runs": runs}


def _publish(publisher: CommandPublisher, topic: str, value: bytes) -> Send:
    return lambda i: publisher.publish(topic, f"k{i}", value, (), timeout_s=5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=2)
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
