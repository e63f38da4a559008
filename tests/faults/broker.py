"""Kafka brokers as the fault tests use them: the shared one's settings, and a broker of a
test's own (``scripts/kafka.sh`` on free ports) that a test may stop and start."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SCRIPT = ROOT / "scripts" / "kafka.sh"

# What the fault tests want from a worker that stops heartbeating (the broker's
# group.min.session.timeout.ms may force more: see session_timeout_ms).
SESSION_TIMEOUT_MS = 3000


async def broker_min_session_timeout_ms(bootstrap: str) -> int:
    """The broker's ``group.min.session.timeout.ms`` (6000 unless scripts/kafka.sh set it)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
        node = str(cluster["brokers"][0]["node_id"])
        resource = ConfigResource(
            ConfigResourceType.BROKER, node, configs={"group.min.session.timeout.ms": None}
        )
        for response in await admin.describe_configs([resource]):
            for res in response.resources:
                for entry in res[4]:
                    if entry[0] == "group.min.session.timeout.ms":
                        return int(entry[1])
    finally:
        await admin.close()
    return 6000


async def session_timeout_ms(bootstrap: str) -> int:
    """SESSION_TIMEOUT_MS, or the broker's minimum when it refuses less (a broker started
    before scripts/kafka.sh allowed 1000 ms: restart it to get the quick rebalances)."""
    return max(SESSION_TIMEOUT_MS, await broker_min_session_timeout_ms(bootstrap))


async def run_script(*args: str, env: dict[str, str], timeout: float = 150) -> str:
    process = await asyncio.create_subprocess_exec(
        str(KAFKA_SCRIPT),
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(timeout):
            out, _ = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    text = out.decode(errors="replace")
    assert process.returncode == 0, f"scripts/kafka.sh {' '.join(args)} failed: {text}"
    return text


@dataclass
class Broker:
    """A broker of this test's own (scripts/kafka.sh with its own ports and directory)."""

    port: int
    env: dict[str, str]

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        await run_script("start", env=self.env)

    async def stop(self) -> None:
        await run_script("stop", env=self.env)

    async def transactions(self, *args: str) -> str:
        """Kafka's TransactionsCommand against this broker (``list``, ``find-hanging``...)."""
        try:
            return await run_script("transactions", *args, env=self.env, timeout=60)
        except (AssertionError, TimeoutError) as exc:
            return f"transactions {' '.join(args)} failed: {exc}"

    async def start_until_it_answers(self, timeout: float = 120) -> asyncio.Task[str]:
        """``scripts/kafka.sh start``, returning as soon as the broker answers a metadata
        request (the script's own check, a JVM, lags far behind on a busy machine); the
        script's task is returned to be awaited later."""
        script = asyncio.create_task(run_script("start", env=self.env, timeout=timeout))
        async with asyncio.timeout(timeout):
            while not await broker_answers(self.bootstrap):
                if script.done():
                    script.result()  # raises what stopped it
                await asyncio.sleep(0.25)
        return script


async def broker_answers(bootstrap: str) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # not an error log line per refused connection
    try:
        async with asyncio.timeout(3):
            await admin.start()
            await admin.describe_cluster()
        return True
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
        quiet.setLevel(level)
