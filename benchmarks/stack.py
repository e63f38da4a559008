"""The service under benchmark: gateway and workers as separate processes on the real
broker, the fake Gemini as the provider, the offline voice."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from amplify_stream.bus.kafka_topics import delete_topics
from consumers.runtime import ROLES

COMMAND = str(Path(sys.executable).parent / "amplify-stream")
# A role run by a module of the benchmarks rather than by a command of the service.
SERIAL_ENHANCER = "benchmarks.serial_enhancer"
# The checkout the benchmark runs from: its service code is what the processes run, even
# when the venv's editable install points at another worktree.
ROOT = Path(__file__).resolve().parent.parent
KAFKA = os.environ.get("AMPLIFY_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
PASSWORD = "benchmark password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Stack:
    base: str
    gateway_pid: int
    env: dict[str, str]
    # Every process of the stack by role (gateway, each worker role, fake-gemini).
    pids: dict[str, int] = field(default_factory=dict)
    # Every gateway's base URL, the first one's (``base``) first; and their processes.
    bases: list[str] = field(default_factory=list)
    gateway_pids: list[int] = field(default_factory=list)

    @property
    def ws_url(self) -> str:
        return self.base.replace("http", "ws", 1) + "/v1/stream"

    async def token(self, session: aiohttp.ClientSession, username: str) -> str:
        creds = {"username": username, "password": PASSWORD}
        async with session.post(f"{self.base}/v1/auth/register", json=creds) as res:
            assert res.status in (201, 409), await res.text()
        async with session.post(f"{self.base}/v1/auth/token", json=creds) as res:
            assert res.status == 200, await res.text()
            token: str = (await res.json())["access_token"]
            return token


def _env(data_dir: Path, port: int, gemini_port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMPLIFY_")}
    env.update(
        AMPLIFY_BUS="kafka",
        AMPLIFY_KAFKA_BOOTSTRAP_SERVERS=KAFKA,
        AMPLIFY_TOPIC_PREFIX=f"bench{uuid.uuid4().hex[:6]}",
        AMPLIFY_DATA_DIR=str(data_dir),
        AMPLIFY_PORT=str(port),
        AMPLIFY_JWT_SECRET="bench-" + uuid.uuid4().hex * 2,
        AMPLIFY_BCRYPT_ROUNDS="4",
        AMPLIFY_LOG_LEVEL="WARNING",
        AMPLIFY_ENHANCER_PROVIDER="gemini",
        GEMINI_API_KEY="bench-key",
        AMPLIFY_GEMINI_BASE_URL=f"http://127.0.0.1:{gemini_port}",
        AMPLIFY_FAKE_GEMINI_PORT=str(gemini_port),
        AMPLIFY_SPEECH_PROVIDER="espeak",
        AMPLIFY_ENHANCER_CONCURRENCY="1000",
        AMPLIFY_NARRATOR_CONCURRENCY="2",
        # A benchmark is one tenant hammering the service: lift the per-user limits.
        AMPLIFY_SUBMISSIONS_PER_MINUTE="1000000",
        AMPLIFY_MAX_RUNNING_PER_USER="100000",
        AMPLIFY_LOGIN_ATTEMPTS_PER_MINUTE_PER_USER="100000",
        AMPLIFY_LOGIN_ATTEMPTS_PER_MINUTE_PER_ADDRESS="100000",
        NO_PROXY="127.0.0.1,localhost",
    )
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env.update(extra)
    return env


async def _wait_ready(base: str) -> None:
    async with aiohttp.ClientSession() as session, asyncio.timeout(90):
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{base}/readyz") as res:
                    if res.status == 200:
                        return
            await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def running_stack(
    *,
    first_token_ms: int,
    tokens_per_s: float,
    enhancers: int = 1,
    serial: bool = False,
    gateways: int = 1,
    **extra: str,
) -> AsyncIterator[Stack]:
    """The whole stack: fake Gemini, a process of every worker role
    (``consumers.runtime.ROLES``: ``enhancers`` enhancers in one group, the narrator, the
    projector, the documents worker) and ``gateways`` gateway processes; all stopped on
    exit. ``serial``: the enhancers narrate only once the rewrite is whole
    (``benchmarks/serial_enhancer.py``)."""
    async with _processes(
        whole_stack_roles(enhancers, serial=serial),
        gateways=gateways,
        AMPLIFY_FAKE_GEMINI_FIRST_TOKEN_MS=str(first_token_ms),
        AMPLIFY_FAKE_GEMINI_TOKENS_PER_S=str(tokens_per_s),
        **extra,
    ) as stack:
        yield stack


def whole_stack_roles(enhancers: int, *, serial: bool = False) -> list[tuple[str, list[str]]]:
    """The processes of the whole stack but its gateways, as (name, command arguments):
    the fake Gemini, then one process of each worker role the service has (``enhancers``
    of the enhancer)."""
    enhancer = [SERIAL_ENHANCER] if serial else ["worker", "enhancer"]
    roles = [("fake-gemini", ["fake", "gemini"])]
    for role in ROLES:
        if role == "enhancer":
            roles += [(f"enhancer{n + 1}" if n else "enhancer", enhancer) for n in range(enhancers)]
        else:
            roles.append((role, ["worker", role]))
    return roles


@contextlib.asynccontextmanager
async def documents_stack(**extra: str) -> AsyncIterator[Stack]:
    """Live documents: a gateway and a documents worker (the owner of every document),
    with the local analyzer; both stopped on exit."""
    async with _processes(
        [("documents", ["worker", "documents"])], AMPLIFY_ENHANCER_PROVIDER="local", **extra
    ) as stack:
        yield stack


@contextlib.asynccontextmanager
async def gateway_stack(**extra: str) -> AsyncIterator[Stack]:
    """A gateway alone: what it accepts stays on the commands topic, as while every
    worker is down, so its accept path is measured apart from the pipeline."""
    async with _processes([], **extra) as stack:
        yield stack


@contextlib.asynccontextmanager
async def running_roles(
    roles: list[str], *, gateways: int = 1, **extra: str
) -> AsyncIterator[Stack]:
    """``gateways`` gateways and one process of each worker role in ``roles``, on Kafka."""
    workers = [(role, ["worker", role]) for role in roles]
    async with _processes(workers, gateways=gateways, **extra) as stack:
        yield stack


@contextlib.asynccontextmanager
async def embedded_stack(**extra: str) -> AsyncIterator[Stack]:
    """The embedded default, as `make run` starts it: ``amplify-stream serve`` alone (the
    memory bus, every worker in the one process), the offline analyzer and voice."""
    async with _processes(
        [],
        front="serve",
        AMPLIFY_BUS="memory",
        AMPLIFY_ENHANCER_PROVIDER="local",
        **extra,
    ) as stack:
        yield stack


@contextlib.asynccontextmanager
async def _processes(
    roles: list[tuple[str, list[str]]],
    *,
    front: str = "gateway",
    gateways: int = 1,
    **extra: str,
) -> AsyncIterator[Stack]:
    """Each of ``roles`` (name, command arguments) as a process, then ``gateways`` of the
    ``front`` (``gateway``, or ``serve``: everything in one); yields once they are ready
    and every worker is in its group."""
    port, gemini_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="amplify-bench-") as tmp:
        env = _env(Path(tmp), port, gemini_port, **extra)
        procs: list[asyncio.subprocess.Process] = []
        pids: dict[str, int] = {}
        drains: list[asyncio.Task[None]] = []
        try:
            workers = []
            for role, args in roles:
                argv = [sys.executable, "-m", *args] if args[0] == SERIAL_ENHANCER else args
                proc = await asyncio.create_subprocess_exec(
                    *([] if argv is not args else [COMMAND]),
                    *argv,
                    env=env,
                    stdout=asyncio.subprocess.PIPE,
                )
                procs.append(proc)
                pids[role] = proc.pid
                if args[0] in ("worker", SERIAL_ENHANCER):
                    workers.append(proc)
            ports = [port, *(free_port() for _ in range(gateways - 1))]
            fronts = []
            for n, front_port in enumerate(ports):
                gateway = await asyncio.create_subprocess_exec(
                    COMMAND,
                    front,
                    env=env | {"AMPLIFY_PORT": str(front_port)},
                    stdout=asyncio.subprocess.DEVNULL,
                )
                procs.append(gateway)
                fronts.append(gateway)
                pids[front if n == 0 else f"{front}{n + 1}"] = gateway.pid
            bases = [f"http://127.0.0.1:{p}" for p in ports]
            await asyncio.gather(*(_wait_ready(base) for base in bases))
            # Every worker in its group: a member joining mid-run would hand stories over.
            joined = [asyncio.get_running_loop().create_future() for _ in workers]
            drains = [
                asyncio.create_task(_drain(proc, done))
                for proc, done in zip(workers, joined, strict=True)
            ]
            async with asyncio.timeout(90):
                await asyncio.gather(*joined)
            yield Stack(bases[0], fronts[0].pid, env, pids, bases, [proc.pid for proc in fronts])
        finally:
            for task in drains:
                task.cancel()
            for proc in reversed(procs):
                if proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    async with asyncio.timeout(15):
                        await proc.wait()
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
            # The next stack starts on a broker as clean as this one found it.
            if env.get("AMPLIFY_BUS") == "kafka":
                await delete_topics(KAFKA, env["AMPLIFY_TOPIC_PREFIX"] + ".")


async def _drain(proc: asyncio.subprocess.Process, joined: asyncio.Future[None]) -> None:
    """Resolve ``joined`` when the worker says it runs in its group; read on till it ends."""
    assert proc.stdout is not None
    async for line in proc.stdout:
        if b"running in group" in line and not joined.done():
            joined.set_result(None)
    if not joined.done():
        joined.set_exception(RuntimeError(f"worker {proc.pid} ended before joining its group"))


async def metric_samples(
    session: aiohttp.ClientSession, url: str, prefix: str = "amplify_"
) -> list[Sample]:
    """The samples of a process's ``/metrics`` (at ``url``) whose names start ``prefix``."""
    async with session.get(url) as res:
        res.raise_for_status()
        text = await res.text()
    return [
        sample
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith(prefix)
    ]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (0 once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def broker_pid() -> int | None:
    """The local Kafka broker's process, when it runs on this machine (for its CPU): the
    one whose properties file listens on ``KAFKA``'s port, where other brokers run too
    (another checkout's cluster), else the first one found."""
    port = KAFKA.rsplit(":", 1)[-1]
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"kafka.Kafka" not in cmdline:
            continue
        found.append(int(entry.name))
        with contextlib.suppress(OSError, IndexError, UnicodeDecodeError):
            properties = Path(cmdline[cmdline.index(b"kafka.Kafka") + 1].decode())
            for line in properties.read_text().splitlines():
                if line.startswith("listeners=") and f":{port}" in line.split(",")[0]:
                    return int(entry.name)
    return min(found, default=None)


class CpuMeter:
    """CPU seconds spent by each process of the stack (and this client, and the broker)
    between ``start`` and ``stop``: the cost, where wall-clock latency on a shared
    2-core machine only says whether it kept up."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = dict(pids)
        if (broker := broker_pid()) is not None:
            self._pids["kafka"] = broker
        self._pids["client"] = os.getpid()
        self._before: dict[str, float] = {}

    def start(self) -> None:
        self._before = {role: cpu_seconds(pid) for role, pid in self._pids.items()}
        self._before["machine"] = machine_busy_seconds()

    def stop(self) -> dict[str, float]:
        """CPU seconds by role; ``others`` is whatever else kept the machine busy."""
        spent = {
            role: round(cpu_seconds(pid) - self._before[role], 2)
            for role, pid in self._pids.items()
        }
        machine = machine_busy_seconds() - self._before["machine"]
        spent["others"] = round(max(0.0, machine - sum(spent.values())), 2)
        return spent


def machine_busy_seconds() -> float:
    """Busy CPU seconds of the whole machine so far (all cores; idle and iowait left out)."""
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / _CLOCK_TICKS
