"""Fault tests: the service as real processes (tests/e2e/conftest.py), with faults
injected from outside: dropped sockets, killed or frozen workers, a broker that goes away,
cancels, poison records. Each test is a scenario (``scenario``, tests/faults/scenario.py):
start, the fault, the recovery, then the count of what happened to every story it sent,
one line ``FAULTS <name>: trials=N accepted=N completed=N lost=N duplicated=N failed=N
unaccepted=N`` on stdout and in ``test-artifacts/faults.txt`` (tests/faults/report.py).

The machinery, module by module: ``stack`` (the processes), ``broker`` (a broker of a
test's own), ``topics`` (a topic read from its start), ``client`` (a story as a client
assembles it), ``owners`` (which worker runs a story), ``report`` (the counts).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import delete_topics
from tests.e2e.conftest import KAFKA, processes
from tests.faults.broker import Broker, session_timeout_ms
from tests.faults.cluster import Cluster
from tests.faults.report import FAULTS_FILE, LOGS_DIR
from tests.faults.scenario import Scenario
from tests.faults.stack import Stack, StackFactory, Start, fault_env
from tests.support import free_port

__all__ = ["processes"]  # the fixture, for the tests of this package


@pytest.fixture(scope="session", autouse=True)
def faults_file() -> Path:
    """``test-artifacts/faults.txt``, emptied once per session."""
    FAULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    FAULTS_FILE.write_text("")
    return FAULTS_FILE


@pytest.fixture
async def own_broker(tmp_path: Path) -> AsyncIterator[Broker]:
    """A second broker on free ports; a restart keeps its topics and offsets
    (KAFKA_KEEP_DATA=1). Stopped at the end, whatever happened."""
    port = free_port()
    env = {
        **os.environ,
        "KAFKA_PORT": str(port),
        "CONTROLLER_PORT": str(free_port()),
        "KAFKA_RUN": str(tmp_path / "kafka"),
        "KAFKA_KEEP_DATA": "1",
    }
    broker = Broker(port, env)
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()


@pytest.fixture
async def cluster(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Cluster]:
    """Three brokers of the test's own, a KRaft cluster on free ports (tests/faults/
    cluster.py); all killed at the end, whatever happened, their logs kept in
    ``test-artifacts/faults/<test>/``."""
    cluster = Cluster(tmp_path / "cluster")
    try:
        await cluster.start()
        yield cluster
    finally:
        await cluster.stop()
        logs = LOGS_DIR / re.sub(r"[^\w.-]+", "_", request.node.name)
        logs.mkdir(parents=True, exist_ok=True)
        for node in cluster.nodes:
            with contextlib.suppress(OSError):
                log = Path(node.env["KAFKA_RUN"]) / "kafka.log"
                (logs / f"kafka-{node.node_id}.log").write_bytes(log.read_bytes())


@pytest.fixture
async def stacks(
    processes: Start, tmp_path: Path, kafka_bootstrap: str, request: pytest.FixtureRequest
) -> AsyncIterator[StackFactory]:
    """``await stacks(bootstrap=..., **env)``: a Stack; its processes are stopped (all at
    once), their output kept in ``test-artifacts/faults/<test>/``, and its topics deleted
    from the shared broker at the end."""
    made: list[Stack] = []

    async def make(bootstrap: str = KAFKA, **extra: str) -> Stack:
        timeout = await session_timeout_ms(bootstrap)
        env = fault_env(tmp_path, bootstrap, AMPLIFY_KAFKA_SESSION_TIMEOUT_MS=str(timeout), **extra)
        stack = Stack(processes, env)
        made.append(stack)
        return stack

    yield make
    logs = LOGS_DIR / re.sub(r"[^\w.-]+", "_", request.node.name)
    for stack in made:
        await stack.stop_all()
        logs.mkdir(parents=True, exist_ok=True)
        for proc in stack.procs:
            (logs / f"{proc.name}.log").write_text("".join(proc.output))
        if stack.bootstrap == kafka_bootstrap:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(30):
                    await delete_topics(stack.bootstrap, stack.topic("")[: -len(".v1")])


@pytest.fixture
async def scenario(stacks: StackFactory, request: pytest.FixtureRequest) -> AsyncIterator[Scenario]:
    """The test as a scenario named after it (``await scenario.start(...)`` first); its
    session and topic readers close at the end, before its processes stop."""
    async with contextlib.AsyncExitStack() as exits:
        yield Scenario(request.node.name, stacks, exits)
