"""Fault tests: the service as real processes (the helpers of tests/e2e/conftest.py), with
faults injected from outside: dropped sockets, killed workers, a broker that goes away,
cancels, poison records. Each test counts what happened to every story it sent and
writes one line ``FAULTS <name>: trials=N accepted=N completed=N lost=N duplicated=N``
to stdout and to ``test-artifacts/faults.txt``.

What a client makes of a story's events (``StoryView``) follows docs/protocol.md: the text is
the deltas of the latest enhancement attempt, the audio the chunks after the latest
``audio.reset``; both are compared byte for byte with the outcome topic.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import os
import random
import re
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from tests.conftest import delete_topics
from tests.e2e.conftest import KAFKA, Proc, base_env, processes
from tests.support import free_port, sign_up

__all__ = ["processes"]  # the fixture, for the tests of this package

ROOT = Path(__file__).resolve().parents[2]
FAULTS_FILE = ROOT / "test-artifacts" / "faults.txt"
LOGS_DIR = ROOT / "test-artifacts" / "faults"
KAFKA_SCRIPT = ROOT / "scripts" / "kafka.sh"

Start = Callable[..., Awaitable[Proc]]

# What the fault tests want from a worker that stops heartbeating (the broker's
# group.min.session.timeout.ms may force more: see session_timeout_ms).
SESSION_TIMEOUT_MS = 3000

# Stories: one passage is ~25 pieces of rewrite (half a second at 20 ms a piece, a few
# seconds when ten run at once) and ~25 s of speech; a number makes each one distinct.
PASSAGES = (
    'Mara walked into the old lighthouse at dusk. "We should not be here," she said quietly. '
    "The door was opened by the wind. Tom felt very cold and he noticed the smell of salt "
    "and rust. It was the the last night of autumn, and the waves were loud against the "
    'rocks below. "Stay close," Tom whispered nervously. 🌊 Élodie waited in the village.',
    "The stairs were narrow and they seemed to go on forever. Mara counted them under her "
    'breath. "Ninety-nine," she said finally. The lamp room was empty, but the glass was '
    "warm, as if someone had just left. Tom saw that the logbook was open on the desk. The "
    "last entry had been written that very morning, in a hand that neither of them knew.",
)


def story_text(trial: int, passages: int = 1) -> str:
    body = " ".join(PASSAGES[i % len(PASSAGES)] for i in range(passages))
    return f"Night {trial + 1}. {body}"


# ---------------------------------------------------------------- the report


@pytest.fixture(scope="session", autouse=True)
def faults_file() -> Path:
    """``test-artifacts/faults.txt``, emptied once per session."""
    FAULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    FAULTS_FILE.write_text("")
    return FAULTS_FILE


@dataclass
class Counts:
    name: str
    trials: int
    accepted: int
    completed: int
    lost: int
    duplicated: int
    details: list[str] = field(default_factory=list)

    @property
    def line(self) -> str:
        return (
            f"FAULTS {self.name}: trials={self.trials} accepted={self.accepted} "
            f"completed={self.completed} lost={self.lost} duplicated={self.duplicated}"
        )


def report(counts: Counts) -> Counts:
    """Print the counts line (and the details, indented) and append them to faults.txt."""
    lines = [counts.line, *(f"    {d}" for d in counts.details)]
    print("\n" + "\n".join(lines), flush=True)
    with FAULTS_FILE.open("a") as out:
        out.write("\n".join(lines) + "\n")
    return counts


def count_stories(
    name: str, trials: int, accepted: Iterable[str], outcomes: TopicLog, details: list[str]
) -> Counts:
    """Counts from the outcome topic: completed = accepted stories with a
    ``story.completed`` there; lost = accepted without one; duplicated = with several."""
    ids = list(dict.fromkeys(accepted))
    completions = {sid: len(outcomes.completions(sid)) for sid in ids}
    completed = sum(1 for n in completions.values() if n >= 1)
    duplicated = sum(1 for n in completions.values() if n > 1)
    lost_ids = [sid for sid, n in completions.items() if n == 0]
    if lost_ids:
        details.append(f"lost: {lost_ids[:10]}")
    dup = {sid: n for sid, n in completions.items() if n > 1}
    if dup:
        details.append(f"story.completed more than once: {dict(list(dup.items())[:10])}")
    return report(Counts(name, trials, len(ids), completed, len(lost_ids), duplicated, details))


_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_NUMBER = re.compile(r"\b\d+\b")


def summarize(failures: list[str], examples: int = 12) -> list[str]:
    """How many failures of each kind (ids and numbers blanked), then the first few."""
    kinds = Counter(_NUMBER.sub("N", _ID.sub("<story>", f)) for f in failures)
    lines = [f"{n} x {kind}" for kind, n in kinds.most_common()]
    return [*lines, *(f"e.g. {f}" for f in failures[:examples])] if failures else []


# ---------------------------------------------------------------- the broker


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


async def run_script(
    *args: str, env: dict[str, str], timeout: float = 150, check: bool = True
) -> str:
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
    if check:
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


# ---------------------------------------------------------------- processes


@dataclass
class Gateway:
    proc: Proc
    base: str


async def wait_until_ready(proc: Proc, base: str, timeout: float = 60) -> None:
    async with aiohttp.ClientSession() as session, asyncio.timeout(timeout):
        while True:
            if proc.process.returncode is not None:
                raise AssertionError(f"{proc.name} exited: {''.join(proc.output)[-3000:]}")
            try:
                async with session.get(f"{base}/readyz") as res:
                    if res.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)


class Stack:
    """The service's processes of one test: one topic prefix, one data directory (the
    SQLite store every gateway shares), one JWT secret."""

    def __init__(self, start: Start, env: dict[str, str]) -> None:
        self._start = start
        self.env = env
        self.procs: list[Proc] = []
        self._serial = 0

    @property
    def bootstrap(self) -> str:
        return self.env["AMPLIFY_KAFKA_BOOTSTRAP_SERVERS"]

    def topic(self, name: str) -> str:
        return f"{self.env['AMPLIFY_TOPIC_PREFIX']}.{name}.v1"

    def _name(self, role: str) -> str:
        self._serial += 1
        return f"{role}-{self._serial}"

    async def worker(self, role: str, *, wait: bool = True) -> Proc:
        proc = await self._start(self._name(role), ["worker", role], self.env)
        self.procs.append(proc)
        if wait:
            await proc.wait_for_line(f"{role} running", timeout=90)
        return proc

    async def gateway(self) -> Gateway:
        port = free_port()
        env = {**self.env, "AMPLIFY_PORT": str(port)}
        proc = await self._start(self._name("gateway"), ["gateway"], env)
        self.procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        await wait_until_ready(proc, base)
        return Gateway(proc, base)

    async def start(self, name: str, args: list[str], env: dict[str, str]) -> Proc:
        proc = await self._start(name, args, env)
        self.procs.append(proc)
        return proc

    async def stop_all(self) -> None:
        await asyncio.gather(*(p.stop() for p in self.procs), return_exceptions=True)


def fault_env(tmp_path: Path, bootstrap: str, **extra: str) -> dict[str, str]:
    env = base_env(
        tmp_path,
        AMPLIFY_BUS="kafka",
        AMPLIFY_KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        AMPLIFY_TOPIC_PREFIX=f"faults{uuid.uuid4().hex[:8]}",
        AMPLIFY_ENHANCER_PROVIDER="local",
        AMPLIFY_SPEECH_PROVIDER="espeak",
        AMPLIFY_LOCAL_PIECE_DELAY_MS="20",
        AMPLIFY_KAFKA_SESSION_TIMEOUT_MS=str(SESSION_TIMEOUT_MS),
        # The gateway's per-user limits are not under test here.
        AMPLIFY_SUBMISSIONS_PER_MINUTE="1000000",
        AMPLIFY_MAX_RUNNING_PER_USER="1000000",
        AMPLIFY_LOGIN_ATTEMPTS_PER_MINUTE_PER_USER="1000000",
        AMPLIFY_LOGIN_ATTEMPTS_PER_MINUTE_PER_ADDRESS="1000000",
    )
    env.update(extra)
    return env


StackFactory = Callable[..., Awaitable[Stack]]


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


async def with_fake_gemini(
    stacks: StackFactory, *, first_token_ms: int, tokens_per_s: float
) -> tuple[Stack, str]:
    """A stack whose enhancers call the fake Gemini, run as a process of its own (a model
    that answers after ``first_token_ms``, then writes ``tokens_per_s``); and its URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    stack = await stacks(
        AMPLIFY_ENHANCER_PROVIDER="gemini",
        GEMINI_API_KEY="fake-key-for-tests",
        AMPLIFY_GEMINI_BASE_URL=base,
        AMPLIFY_FAKE_GEMINI_PORT=str(port),
        AMPLIFY_FAKE_GEMINI_FIRST_TOKEN_MS=str(first_token_ms),
        AMPLIFY_FAKE_GEMINI_TOKENS_PER_S=str(tokens_per_s),
    )
    fake = await stack.start("fake-gemini", ["fake", "gemini"], stack.env)
    await fake.wait_for_line("fake Gemini on", timeout=60)
    return stack, base


async def fake_gemini_record(session: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    """What the fake Gemini saw (``GET /_fake/record``): counts and every call."""
    async with session.get(f"{base}/_fake/record") as res:
        assert res.status == 200, f"GET /_fake/record: {res.status} (the fake has no record)"
        record: dict[str, Any] = await res.json()
        return record


# ---------------------------------------------------------------- topics


class TopicLog:
    """Every record of one topic from its start, read by a plain consumer outside any
    group (as analytics read the outcome topic), collected in the background."""

    def __init__(self, bootstrap: str, topic: str, *, isolation: str = "read_committed") -> None:
        self._bootstrap = bootstrap
        self.topic = topic
        self._isolation = isolation
        self.records: list[ConsumerRecord[bytes, bytes]] = []
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> TopicLog:
        self._consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self._bootstrap,
            group_id=None,
            isolation_level=self._isolation,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=100,
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._collect())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def _collect(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=200)
            for records in batches.values():
                self.records.extend(records)

    def events(self) -> list[dict[str, Any]]:
        """The records that are JSON objects (a poison record is not)."""
        found = []
        for record in self.records:
            try:
                event = json.loads(record.value or b"")
            except ValueError:
                continue
            if isinstance(event, dict):
                found.append(event)
        return found

    def events_of(self, story_id: str) -> list[dict[str, Any]]:
        return [e for e in self.events() if e.get("story_id") == story_id]

    def completions(self, story_id: str) -> list[dict[str, Any]]:
        return [e for e in self.events_of(story_id) if e.get("type") == "story.completed"]

    def latest(self, story_id: str, event_type: str) -> dict[str, Any] | None:
        found = [e for e in self.events_of(story_id) if e.get("type") == event_type]
        return max(found, key=lambda e: e.get("attempt") or 0) if found else None

    async def wait_completed(
        self,
        story_ids: Iterable[str],
        timeout: float,
        settle: float = 1.5,
        stall: float = 20.0,
    ) -> None:
        """Until every story has its ``story.completed``, or ``timeout``, or ``stall``
        seconds without one more of them completing; then ``settle`` seconds more, so a
        duplicate right behind is counted too."""
        ids = set(story_ids)
        deadline = time.monotonic() + timeout
        done: set[str] = set()
        moved = time.monotonic()
        while True:
            events = self.events()
            now_done = ids & {e["story_id"] for e in events if e.get("type") == "story.completed"}
            if len(now_done) > len(done):
                done, moved = now_done, time.monotonic()
            now = time.monotonic()
            if done == ids or now >= deadline or now - moved >= stall:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(settle)


# ---------------------------------------------------------------- who runs a story

# What a worker logs when it starts a story (the enhancer) or its narration (the
# narrator), with the attempt; the socket event that starts an attempt, and the one that
# abandons the attempt before.
STARTED = {"enhancer": "story {} started (attempt", "narrator": "story {} narration started"}
ATTEMPT_EVENT = {"enhancer": "enhancement.started", "narrator": "audio.started"}
RESET = {"enhancer": "enhancement.reset", "narrator": "audio.reset"}
_ATTEMPT = re.compile(r"\(attempt (\d+)\)")


def lines_with(proc: Proc, needle: str, start: int = 0) -> list[str]:
    return [line for line in proc.output[start:] if needle in line]


async def running(
    procs: list[Proc], role: str, story_id: str, attempt: int, timeout: float
) -> list[Proc]:
    """The processes that logged starting ``attempt`` of the story in ``role`` (once any
    has, or none after ``timeout``): one, unless the owner is not certain."""
    needle = STARTED[role].format(story_id)
    deadline = time.monotonic() + timeout
    while True:
        found = [
            p
            for p in procs
            if any(
                (m := _ATTEMPT.search(line)) and int(m.group(1)) == attempt
                for line in lines_with(p, needle)
            )
        ]
        if found or time.monotonic() >= deadline:
            return found
        await asyncio.sleep(0.05)


async def owner_of(
    procs: list[Proc], role: str, view: StoryView, timeout: float = 3
) -> Proc | None:
    """The member of ``role`` running the attempt the client is hearing now (its latest
    ``enhancement.started``/``audio.started``), or None when that is not one process."""
    attempt = max(
        (int(e.get("attempt", 1)) for e in view.events if e.get("type") == ATTEMPT_EVENT[role]),
        default=1,
    )
    assert view.story_id is not None
    owners = await running(procs, role, view.story_id, attempt, timeout)
    return owners[0] if len(owners) == 1 else None


# ---------------------------------------------------------------- the client's view


def parse_cursor(cursor: str) -> tuple[int, int]:
    partition, _, offset = cursor.partition("-")
    return int(partition), int(offset)


@dataclass
class StoryView:
    """One story as a client following docs/protocol.md assembles it, and what broke the rules."""

    story_id: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    last_cursor: str | None = None
    # Deltas by attempt: the text is the latest attempt's.
    deltas: dict[int, list[str]] = field(default_factory=dict)
    started_attempts: list[int] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)
    audio_started: bool = False
    enhancement_resets: int = 0
    audio_resets: int = 0
    audio_completed: dict[str, Any] | None = None
    completed: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)
    # A gap in the chunk indexes of the attempt being heard: a problem unless an
    # audio.reset drops that attempt later (a run that failed on the bus may lose some of
    # its records; the client drops the whole run at the reset).
    chunk_gap: str | None = None
    # The attempt of each stage's latest reset (``enhancement``, ``narration``): an event
    # of an older attempt after it is one the client should never have been sent.
    latest_reset: dict[str, int] = field(default_factory=dict)

    def add(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        kind = event.get("type")
        cursor = event.get("cursor")
        if cursor:
            if self.last_cursor is not None and parse_cursor(cursor) <= parse_cursor(
                self.last_cursor
            ):
                self.problems.append(f"cursor {cursor} after {self.last_cursor} ({kind})")
            self.last_cursor = cursor
        if self.story_id is None and event.get("story_id"):
            self.story_id = event["story_id"]
        if self.completed is not None and kind != "pong":
            self.problems.append(f"{kind} after story.completed")
        stage = "narration" if str(kind).startswith("audio.") else "enhancement"
        attempt = event.get("attempt")
        if kind in ("enhancement.reset", "audio.reset"):
            self.latest_reset[stage] = max(self.latest_reset.get(stage, 0), int(attempt or 0))
        elif attempt is not None and int(attempt) < self.latest_reset.get(stage, 0):
            self.problems.append(
                f"{kind} of attempt {attempt} after the {stage} reset to attempt "
                f"{self.latest_reset[stage]}"
            )
        if kind == "enhancement.reset":
            self.enhancement_resets += 1
        elif kind == "enhancement.started":
            attempt = int(event.get("attempt", 1))
            if self.started_attempts:
                if attempt <= self.started_attempts[-1]:
                    self.problems.append(
                        f"enhancement.started attempt {attempt} again "
                        f"(after attempt {self.started_attempts[-1]})"
                    )
                if self.enhancement_resets < len(self.started_attempts):
                    self.problems.append("enhancement restarted without enhancement.reset")
            self.started_attempts.append(attempt)
        elif kind == "enhancement.delta":
            self.deltas.setdefault(int(event.get("attempt", 1)), []).append(event["text"])
        elif kind == "audio.reset":
            self.audio_resets += 1
            self.chunk_gap = None
            self.chunks.clear()
            self.audio_started = False
        elif kind == "audio.started":
            if self.audio_started:
                self.problems.append("audio.started again without audio.reset")
            self.audio_started = True
        elif kind == "audio.chunk":
            if event["index"] != len(self.chunks) and self.chunk_gap is None:
                self.chunk_gap = f"audio.chunk index {event['index']}, expected {len(self.chunks)}"
            self.chunks.append(base64.b64decode(event["data"]))
        elif kind == "audio.completed":
            self.audio_completed = event
        elif kind == "story.completed":
            self.completed = event

    @property
    def restarted(self) -> bool:
        return len(self.started_attempts) > 1 or self.audio_resets > 0

    @property
    def text(self) -> str:
        if not self.deltas:
            return ""
        return "".join(self.deltas[max(self.deltas)])

    @property
    def audio(self) -> bytes:
        return b"".join(self.chunks)

    def timeline(self) -> str:
        """The events in short: ``enhancement.delta#1 x3`` is three deltas of attempt 1."""
        runs: list[list[Any]] = []
        for event in self.events:
            label = str(event.get("type"))
            if "attempt" in event:
                label += f"#{event['attempt']}"
            if label == "story.completed":
                label += f"({event.get('status')})"
            if runs and runs[-1][0] == label:
                runs[-1][1] += 1
            else:
                runs.append([label, 1])
        return ", ".join(f"{label} x{n}" if n > 1 else label for label, n in runs)

    def count(self, kind: str) -> int:
        return sum(1 for e in self.events if e.get("type") == kind)

    def check_against(self, outcomes: TopicLog, *, audio: bool = True) -> list[str]:
        """What differs between this view and the outcome topic (empty: all equal)."""
        sid = self.story_id or "?"
        problems = [f"{sid}: {p}" for p in self.problems]
        if self.chunk_gap is not None:
            problems.append(f"{sid}: {self.chunk_gap}")
        if self.completed is None:
            return [*problems, f"{sid}: no story.completed on the socket"]
        enhanced = outcomes.latest(sid, "enhancement.completed")
        if enhanced is None:
            problems.append(f"{sid}: no enhancement.completed on the outcome topic")
        elif enhanced["text"] != self.text:
            problems.append(
                f"{sid}: assembled text ({len(self.text)} chars) != outcome "
                f"enhancement.completed.text ({len(enhanced['text'])} chars)"
            )
        if audio:
            narrated = outcomes.latest(sid, "narration.completed")
            digest = hashlib.sha256(self.audio).hexdigest()
            if narrated is None:
                problems.append(f"{sid}: no narration.completed on the outcome topic")
            elif narrated["sha256"] != digest:
                problems.append(
                    f"{sid}: sha256 of the assembled audio ({len(self.audio)} bytes) != "
                    f"outcome narration.completed.sha256 ({narrated['bytes']} bytes)"
                )
        return problems


async def read_until(
    ws: aiohttp.ClientWebSocketResponse,
    view: StoryView,
    stop: Callable[[StoryView], bool] = lambda v: v.completed is not None,
) -> None:
    """Frames into ``view`` until ``stop(view)`` or ``story.completed``."""
    while not stop(view) and view.completed is None:
        msg = await ws.receive()
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise AssertionError(f"the socket ended: {msg.type} {msg.data!r}")
        view.add(json.loads(msg.data))


def ws_url(base: str) -> str:
    return base.replace("http", "ws", 1) + "/v1/stream"


async def new_user(session: aiohttp.ClientSession, base: str) -> str:
    return await sign_up(session, base, f"u{uuid.uuid4().hex[:10]}")


class Budget:
    """A test's time, so it ends (and reports) before pytest-timeout would cut it off."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    @property
    def left(self) -> float:
        return self.end - time.monotonic()

    def timeout(self, cap: float) -> asyncio.Timeout:
        """``asyncio.timeout`` of ``cap`` seconds, or what is left of the budget."""
        return asyncio.timeout(max(0.1, min(cap, self.left)))


async def eventually(check: Callable[[], bool], timeout: float, every: float = 0.2) -> bool:
    """Whether ``check()`` came true within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(every)


def progress(name: str, message: str) -> None:
    """A line while a test runs (visible with ``-s``), so a slow fault shows where it is."""
    print(f"  [{time.strftime('%H:%M:%S')}] {name}: {message}", flush=True)


def rng_for(name: str) -> tuple[random.Random, int]:
    """A random source, seeded from AMPLIFY_FAULTS_SEED when set (printed to reproduce)."""
    seed = int(os.environ.get("AMPLIFY_FAULTS_SEED") or time.time_ns() % 1_000_000)
    return random.Random(f"{name}:{seed}"), seed
