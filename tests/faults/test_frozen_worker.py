"""A worker frozen (SIGSTOP) in the middle of a story, and woken (SIGCONT) once another
member of its group has taken the story over: a zombie. It must write nothing more for
the partitions it lost: the outcome topic holds exactly one ``story.completed``,
``enhancement.completed`` and (narrated) ``narration.completed`` per story, the stream
topic holds nothing of the zombie's from after it woke (nor anything at all after the
story's ``story.completed``), the client hears the new attempt and nothing of the old one
after its reset, and the store keeps what the stream completed with.

Each trial proves the fault hit, by the group coordinator's word as well as the workers'
logs: the frozen process is the one that logged the story's start and the member the
coordinator had assigned the story's input partition to (the partition the broker holds
its record in) just before the freeze; the story's next attempt came from the other
member, while the first was frozen, and the coordinator then assigned that partition to
it. Half the trials wake the zombie as soon as the new attempt starts (the two run side by
side), half once the story has completed.

What a woken zombie may still put on the stream topic is decided from the broker alone,
never from a stamp of the service: the stream topic is switched to ``LogAppendTime`` (its
records' timestamps are the broker's clock, the test's own clock on this machine), and a
record of an abandoned attempt is in flight only if it comes after that attempt's reset
(or the story's end) in the log's order and was appended after the test sent SIGCONT.
Those are bounded by what the zombie's producer could hold at the freeze
(``MAX_WAKE_BATCHES``); more fails the trial.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from tests.e2e.conftest import Proc
from tests.faults.client import StoryView
from tests.faults.owners import RESET, lines_with, partition_owner, running
from tests.faults.scenario import ROLES, FakeModel, Scenario, Trial, eventually, story_text
from tests.faults.stack import fake_gemini_record
from tests.faults.topics import TopicLog

TRIALS = 3  # 5 took 105 s of a CI run near its 18 min (issue 24); 3 still freeze each role thrice
ZOMBIE_LOG = {
    "held": "held until the group confirms",
    "fenced": "fenced:",
    "revoked": "revoked [",
    "handed_over": "handed over",
}
# From the freeze: the session timeout, a rebalance, the new owner's fence and history
# read, then its reset on the socket.
TAKEOVER_WITHIN_S = 30
TRIAL_TIMEOUT_S = 60
TRIALS_BUDGET_S = 330
# After waking, the zombie learns from its first heartbeat that it is out of the group.
NOTICED_WITHIN_S = 15
# The coordinator's assignment, read around the freeze (the group is stable then: at once).
ASSIGNMENT_WITHIN_S = 10
# What each role's group reads: the story's record there decides which member runs it.
INPUT = {"enhancer": "stories", "narrator": "segments"}
# What the zombie's stream producer (aiokafka, linger 2 ms: AMPLIFY_STREAM_LINGER_MS) can
# hold for the story's partition at the freeze, and so deliver after it wakes: one open
# batch (aiokafka keeps at most one per partition: an append to a full one waits for it to
# be sent) and one batch of a request (at most one request in flight per broker, and with
# idempotence one batch per partition; one sent before the freeze lands before the reset,
# or is sent again after the wake when its timeout fired first, and then the broker drops
# it as a duplicate or appends it once). A record whose lease check passed just before the
# freeze is appended, on waking, to the open batch: the loop runs it before the sender.
# Every later write waits for the lease. Each batch holds at most ``max_batch_size`` bytes
# of records (the service leaves aiokafka's default), or one record alone when larger.
MAX_WAKE_BATCHES = 2
MAX_BATCH_BYTES: int = inspect.signature(AIOKafkaProducer).parameters["max_batch_size"].default
LOG_APPEND_TIME = 1  # a record's timestamp_type when the broker stamped it


@dataclass
class Zombie:
    """One trial's fault: the story's owner, frozen, then woken."""

    trial: Trial
    audio: bool
    wake_after_completion: bool
    owner: Proc | None = None
    taken_over_by: Proc | None = None
    # The story's partition of its role's input topic (where the broker holds its record),
    # and the member the group coordinator assigned it to before the freeze and after the
    # takeover.
    partition: int | None = None
    held_before: Proc | None = None
    held_after: Proc | None = None
    attempt: int | None = None  # the attempt that took the story over
    # Wall clock (the test's, as the broker's LogAppendTime and the fake's): just before
    # SIGSTOP, and just before SIGCONT (nothing the zombie writes on waking is older).
    frozen_at: float | None = None
    woke_at: float | None = None
    lines_from: int = 0  # the owner's first line after it woke
    noticed: list[str] = field(default_factory=list)
    # What the zombie delivered after it woke (``in_flight``): records, producer batches,
    # bytes of keys and values.
    wake_records: int = 0
    wake_batches: int = 0
    wake_bytes: int = 0

    @property
    def view(self) -> StoryView:
        return self.trial.view

    @property
    def hit(self) -> bool:
        """The fault hit: the story's owner was frozen and another member took it over,
        as the members logged it and as the group coordinator assigned the partition."""
        return (
            self.owner is not None
            and self.taken_over_by is not None
            and self.held_before is self.owner
            and self.held_after is self.taken_over_by
        )


@pytest.mark.kafka
@pytest.mark.timeout(480)
@pytest.mark.parametrize("role", ROLES)
async def test_worker_frozen_and_woken(scenario: Scenario, role: str) -> None:
    await start(scenario, role)
    members = scenario.members(role)
    await stamped_by_broker(scenario.stack.bootstrap, scenario.stack.topic("stream"))
    stream = await scenario.read_topic("stream", isolation="read_uncommitted")
    inputs = await scenario.read_topic(INPUT[role])
    zombies: list[Zombie] = []
    for trial in scenario.trials(TRIALS, each_s=TRIAL_TIMEOUT_S, budget_s=TRIALS_BUDGET_S):
        odd = trial.number % 2 == 1
        zombie = Zombie(trial, audio=role == "narrator" or odd, wake_after_completion=odd)
        zombies.append(zombie)
        async with trial:
            trial.on_exit(wake_all, members)  # never leave a process stopped
            await trial.submit(story_text(trial.number), audio=zombie.audio)
            await trial.read_to_mid_stream(role)
            zombie.owner = await trial.owner(role, members)
            await assigned_before(scenario, zombie, members, role, inputs)
            await freeze_until_taken_over(scenario, zombie, members, role)
            await wake(scenario, zombie)
        if zombie.woke_at is not None:
            await noticed_and_rejoined(scenario, zombie)

    await scenario.settle(timeout=60, stall=20, settle=3)
    fake = scenario.fake_base
    calls = (await fake_gemini_record(scenario.session, fake))["calls"] if fake else []
    for zombie in zombies:
        await check(scenario, zombie, role, stream, calls)
    if calls and (still := [c for c in calls if c["state"] == "open"]):
        scenario.fail(f"{len(still)} model call(s) still open at the end")
    woken = [z for z in zombies if z.hit]
    counts = scenario.count(
        TRIALS,
        f"faults_hit={len(woken)}/{TRIALS} (the coordinator agreeing "
        f"{sum(z.held_before is z.owner and z.held_after is z.taken_over_by for z in zombies)}) "
        + " ".join(f"{kind}={n}" for kind, n in zombie_log(zombies).items()),
        f"in_flight: records={[z.wake_records for z in woken]} "
        f"batches={[z.wake_batches for z in woken]} bytes={[z.wake_bytes for z in woken]} "
        f"(at most {MAX_WAKE_BATCHES} batches of {MAX_BATCH_BYTES} bytes each) "
        f"session_timeout_ms={scenario.stack.env['AMPLIFY_KAFKA_SESSION_TIMEOUT_MS']} "
        f"elapsed={scenario.elapsed:.1f}s",
    )
    assert counts.lost == 0
    assert counts.duplicated == 0
    assert len(woken) == TRIALS, "a trial's fault did not hit"
    assert not scenario.failures, "\n".join(scenario.failures[:20])


async def start(scenario: Scenario, role: str) -> None:
    """Two members of ``role``'s group, one of the other, the projector and a gateway.
    The enhancer's trials use the fake Gemini in its own process (a model that writes 12
    tokens a second, as in the report); the narrator's, the paced offline analyzer."""
    other = "narrator" if role == "enhancer" else "enhancer"
    workers = [role, role, other, "projector"]
    if role == "enhancer":
        await scenario.start(workers=workers, fake_model=FakeModel(300, 12))
    else:
        await scenario.start(workers=workers, AMPLIFY_LOCAL_PIECE_DELAY_MS="60")


async def stamped_by_broker(bootstrap: str, topic: str) -> None:
    """``topic``'s records stamped by the broker (``message.timestamp.type``
    ``LogAppendTime``) from now on, its other settings kept: an AlterConfigs request
    replaces all of a topic's own settings, so they are sent again with it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        resource = ConfigResource(ConfigResourceType.TOPIC, topic)
        (described,) = await admin.describe_configs([resource])
        # (error, message, type, name, entries); an entry: (name, value, read_only,
        # source, sensitive, synonyms); source 1 is the topic's own (DYNAMIC_TOPIC_CONFIG).
        entries = described.resources[0][4]
        own = {name: value for name, value, _, source, *_ in entries if source == 1}
        own["message.timestamp.type"] = "LogAppendTime"
        (altered,) = await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, configs=own)]
        )
        assert altered.resources[0][0] == 0, f"{topic}: AlterConfigs {altered.resources[0]}"
    finally:
        await admin.close()


async def assigned_before(
    scenario: Scenario, zombie: Zombie, members: list[Proc], role: str, inputs: TopicLog
) -> None:
    """The story's partition of the role's input topic (where the broker holds its
    record), and the member the group coordinator assigns it to now, just before the
    freeze; a trial whose owner is not certain by the coordinator's word is missed."""
    trial, sid = zombie.trial, zombie.view.story_id
    stack = scenario.stack
    ok = await eventually(
        lambda: any(r.key and r.key.decode() == sid for r in inputs.records), ASSIGNMENT_WITHIN_S
    )
    if not ok:
        trial.missed(f"trial {trial.number}: {sid}: no record of it on {inputs.topic}")
    zombie.partition = next(r.partition for r in inputs.records if r.key and r.key.decode() == sid)
    zombie.held_before = await partition_owner(
        members,
        stack.bootstrap,
        group_of(scenario, role),
        (inputs.topic, zombie.partition),
        timeout=ASSIGNMENT_WITHIN_S,
    )
    if zombie.held_before is not zombie.owner:
        trial.missed(
            f"trial {trial.number}: {sid}: the coordinator assigns {inputs.topic}"
            f"[{zombie.partition}] to "
            f"{zombie.held_before.name if zombie.held_before else 'no one certain'}, "
            f"the story's start was logged by {zombie.owner.name if zombie.owner else '?'}"
        )


def group_of(scenario: Scenario, role: str) -> str:
    return f"{scenario.stack.env['AMPLIFY_TOPIC_PREFIX']}.{role}"


async def freeze_until_taken_over(
    scenario: Scenario, zombie: Zombie, members: list[Proc], role: str
) -> None:
    """The fault: the owner frozen (SIGSTOP) until another member's reset is on the
    socket (its new attempt started); that member logged the new attempt's start, and the
    coordinator (while the owner is still frozen) assigns it the story's partition."""
    trial, view, owner = zombie.trial, zombie.view, zombie.owner
    assert owner is not None and view.story_id is not None and zombie.partition is not None
    zombie.frozen_at = time.time()
    owner.process.send_signal(signal.SIGSTOP)
    scenario.log(f"trial {trial.number}: {view.story_id}: froze {owner.name}")
    resets = view.count(RESET[role])
    async with asyncio.timeout(TAKEOVER_WITHIN_S):
        await trial.read_until(lambda v: v.count(RESET[role]) > resets)
    if view.completed is not None:
        raise AssertionError("the story completed while its owner was frozen, with no reset")
    zombie.attempt = int([e for e in view.events if e.get("type") == RESET[role]][-1]["attempt"])
    others = [p for p in members if p is not owner]
    taken = await running(others, role, view.story_id, zombie.attempt, timeout=5)
    if len(taken) == 1:
        zombie.taken_over_by = taken[0]
    # The frozen member still logs its old assignment: the others, against the coordinator.
    stack = scenario.stack
    tp = (stack.topic(INPUT[role]), zombie.partition)
    zombie.held_after = await partition_owner(
        others, stack.bootstrap, group_of(scenario, role), tp, timeout=ASSIGNMENT_WITHIN_S
    )


async def wake(scenario: Scenario, zombie: Zombie) -> None:
    """recover: the owner woken (SIGCONT), at once or once the story has completed; then
    the story read out."""
    trial, owner = zombie.trial, zombie.owner
    assert owner is not None and zombie.frozen_at is not None
    if zombie.wake_after_completion:
        await trial.read_to_end()
    zombie.lines_from = len(owner.output)
    zombie.woke_at = time.time()
    owner.process.send_signal(signal.SIGCONT)
    scenario.log(
        f"trial {trial.number}: woke {owner.name} "
        f"{zombie.woke_at - zombie.frozen_at:.1f}s later (attempt {zombie.attempt} by "
        f"{zombie.taken_over_by.name if zombie.taken_over_by else '?'}, "
        f"{'completed' if zombie.view.completed else 'running'})",
    )
    await trial.read_to_end()


def wake_all(members: list[Proc]) -> None:
    for proc in members:
        if proc.process.returncode is None:
            proc.process.send_signal(signal.SIGCONT)


async def noticed_and_rejoined(scenario: Scenario, zombie: Zombie) -> None:
    """The zombie found out: it logs losing its partitions once it wakes. And it is back
    in its group before the next trial, so that trial's story does not move with the
    rebalance its return causes."""
    owner, number = zombie.owner, zombie.trial.number
    assert owner is not None
    deadline = time.monotonic() + NOTICED_WITHIN_S
    while time.monotonic() < deadline and not zombie.noticed:
        zombie.noticed = lines_with(owner, "revoked", zombie.lines_from)
        await asyncio.sleep(0.1)
    if not zombie.noticed:
        scenario.fail(
            f"trial {number}: {owner.name} logged no revocation {NOTICED_WITHIN_S} s after it woke"
        )
    try:
        await owner.wait_for_line("assigned", 15, start=zombie.lines_from)
    except TimeoutError:
        scenario.fail(f"trial {number}: {owner.name} did not rejoin its group")


async def check(
    scenario: Scenario,
    zombie: Zombie,
    role: str,
    stream: TopicLog,
    calls: list[dict[str, Any]],
) -> None:
    """count: one trial's story, once the fault hit: the client's view against the
    outcome topic, which has one of each completion; the stream topic; the store; and
    the frozen enhancer's model stream, closed by it."""
    view, sid = zombie.view, zombie.view.story_id
    if sid is None or not zombie.hit:
        if sid is not None and zombie.owner is not None:
            scenario.fail(
                f"{sid}: no takeover while its {role} was frozen: the start logged by "
                f"{_name(zombie.owner)}, then {_name(zombie.taken_over_by)}; the coordinator "
                f"assigned partition {zombie.partition} to {_name(zombie.held_before)}, then "
                f"{_name(zombie.held_after)}"
            )
        return
    if view.completed is None:
        scenario.fail(f"{sid}: no story.completed on the socket")
        return
    outcomes = scenario.outcomes
    scenario.failures += view.check_against(outcomes, audio=zombie.audio)
    kinds = Counter(e.get("type") for e in outcomes.events_of(sid))
    expected = {"story.completed": 1, "enhancement.completed": 1}
    if zombie.audio:
        expected["narration.completed"] = 1
    for kind, n in expected.items():
        if kinds[kind] != n:
            scenario.fail(f"{sid}: {kinds[kind]} x {kind} on the outcome topic")
    scenario.failures += stream_problems(stream.records, zombie)
    stored = await stored_story(scenario.session, scenario.gateway.base, scenario.token, sid, 15)
    scenario.failures += store_problems(stored, view, outcomes, zombie.audio)
    if scenario.fake_base and not zombie.wake_after_completion:
        # The zombie's model streams (the rewrite, and the analysis beside it) were open
        # while it was frozen; once it woke and lost the story, it closed them rather
        # than reading them to the end.
        assert zombie.frozen_at is not None
        frozen_at = zombie.frozen_at
        mine = [
            c
            for c in calls
            if c["method"] == "streamGenerateContent"
            and c["started_at"] < frozen_at
            and (c["ended_at"] is None or c["ended_at"] > frozen_at)
        ]
        rewrites = [c["state"] for c in mine if not c["structured"]]
        analyses = [c["state"] for c in mine if c["structured"]]
        # An analysis short enough may have been written whole into the socket's buffers
        # while the zombie was frozen: completed, then, but never read on.
        if rewrites != ["disconnected"] or set(analyses) - {"disconnected", "completed"}:
            scenario.fail(
                f"{sid}: the frozen enhancer's model streams ended: rewrite {rewrites}, "
                f"analysis {analyses}; not closed by it"
            )


def zombie_log(zombies: list[Zombie]) -> dict[str, int]:
    """What the zombies logged once woken: writes their lease held back, transactions the
    broker fenced (none expected: the lease stops them first; the fence is proven on its
    own by tests/integration/test_outcome_fencing.py), revocations, and the records' work
    handed over to the new owner. Every kind, zeros included."""
    noticed = Counter(
        kind
        for z in zombies
        if z.owner is not None
        for line in z.owner.output[z.lines_from :]
        for kind, needle in ZOMBIE_LOG.items()
        if needle in line
    )
    return {kind: noticed[kind] for kind in ZOMBIE_LOG}


def stage_of(event_type: str) -> str:
    return "narration" if event_type.startswith("audio.") else "enhancement"


def stream_problems(log: list[Any], zombie: Zombie) -> list[str]:
    """What the stream topic (read uncommitted, as any watcher may) shows of the story
    that breaks the rules: a record after ``story.completed``, or of an attempt older
    than a reset before it, unless the zombie had it in flight (``in_flight``).

    Every record's timestamp must be the broker's (``LogAppendTime``): the service's own
    stamps decide nothing here."""
    sid = zombie.view.story_id
    records = [r for r in log if r.key and r.key.decode() == sid]
    problems = [
        f"{sid}: stream record at offset {r.offset} stamped by its producer, not the broker"
        for r in records
        if r.timestamp_type != LOG_APPEND_TIME
    ][:1]
    latest_reset: dict[str, int] = {}
    completed_at: int | None = None
    stale: list[Any] = []
    for record in records:
        event = json.loads(record.value)
        kind = event.get("type", "?")
        stage = stage_of(kind)
        attempt = event.get("attempt")
        if kind in ("enhancement.reset", "audio.reset"):
            latest_reset[stage] = max(latest_reset.get(stage, 0), int(attempt))
        if completed_at is None and kind == "story.completed":
            completed_at = record.offset
            continue
        if completed_at is not None or (
            attempt is not None and int(attempt) < latest_reset.get(stage, 0)
        ):
            stale.append((record, kind, attempt, completed_at, latest_reset.get(stage)))
    return problems + in_flight(stale, log, zombie)


def in_flight(stale: list[Any], log: list[Any], zombie: Zombie) -> list[str]:
    """The stale records (each with its type, attempt, and the story's end or the stage's
    reset it comes after) that the zombie had in flight: appended, by the broker's clock,
    once the test had sent SIGCONT, in at most ``MAX_WAKE_BATCHES`` producer batches of
    at most ``MAX_BATCH_BYTES`` bytes of records each (or one larger record). Anything
    else, or more, is a problem. A batch is what the broker appended at once: records at
    consecutive offsets of a partition with one append time (two batches appended in the
    same millisecond side by side count as one: the bound is not loosened by it)."""
    sid = zombie.view.story_id
    woke_ms = int((zombie.woke_at or 0) * 1000)
    problems = []
    late = []
    for record, kind, attempt, completed_at, reset in stale:
        where = (
            f"after story.completed at {completed_at}"
            if completed_at is not None
            else f"after the reset to attempt {reset}"
        )
        if zombie.woke_at is None or record.timestamp < woke_ms:
            problems.append(
                f"{sid}: stream topic has {kind} of attempt {attempt} at offset "
                f"{record.offset} {where}, appended {record.timestamp - woke_ms:+d} ms from "
                "the wake: not by the zombie on waking"
            )
        else:
            late.append(record)
    batches = batch_of(log)
    zombie.wake_records = len(late)
    zombie.wake_batches = len({batches[(r.partition, r.offset)] for r in late})
    zombie.wake_bytes = sum(size(r) for r in late)
    most_bytes = MAX_WAKE_BATCHES * max([MAX_BATCH_BYTES, *(size(r) for r in late)])
    if zombie.wake_batches > MAX_WAKE_BATCHES or zombie.wake_bytes > most_bytes:
        kinds = Counter(json.loads(r.value).get("type") for r in late)
        problems.append(
            f"{sid}: the zombie delivered {len(late)} records of its old attempt after it "
            f"woke ({dict(kinds)}), in {zombie.wake_batches} batches, {zombie.wake_bytes} "
            f"bytes: more than its producer could hold at the freeze ({MAX_WAKE_BATCHES} "
            f"batches, {most_bytes} bytes), offsets {[r.offset for r in late][:10]}, "
            f"appended {[r.timestamp - woke_ms for r in late][:10]} ms from the wake"
        )
    return problems


def batch_of(log: list[Any]) -> dict[tuple[int, int], tuple[int, int]]:
    """Each record's (partition, offset) -> its batch: the (partition, first offset) of
    its run of consecutive offsets appended at one moment."""
    found: dict[tuple[int, int], tuple[int, int]] = {}
    previous: Any = None
    first = 0
    for r in sorted(log, key=lambda r: (r.partition, r.offset)):
        if not (
            previous is not None
            and previous.partition == r.partition
            and previous.offset + 1 == r.offset
            and previous.timestamp == r.timestamp
        ):
            first = r.offset
        found[(r.partition, r.offset)] = (r.partition, first)
        previous = r
    return found


def size(record: Any) -> int:
    return int(record.serialized_key_size) + int(record.serialized_value_size)


def _name(proc: Proc | None) -> str:
    return proc.name if proc is not None else "no one certain"


async def stored_story(
    session: aiohttp.ClientSession, base: str, token: str, story_id: str, timeout: float
) -> dict[str, Any]:
    """``GET /v1/stories/{id}`` once the projector has it finished."""
    deadline = time.monotonic() + timeout
    while True:
        async with session.get(
            f"{base}/v1/stories/{story_id}", headers={"Authorization": f"Bearer {token}"}
        ) as res:
            body: dict[str, Any] = await res.json()
        if body.get("status") in ("completed", "failed", "cancelled"):
            return body
        if time.monotonic() >= deadline:
            return body
        await asyncio.sleep(0.2)


def store_problems(
    stored: dict[str, Any], view: StoryView, outcomes: TopicLog, audio: bool
) -> list[str]:
    """The store keeps the completed attempt: what the stream completed with."""
    sid = view.story_id or "?"
    problems = []
    if stored.get("status") != "completed":
        return [f"{sid}: the store says {stored.get('status')!r}, not completed"]
    if stored.get("enhanced_text") != view.text:
        problems.append(f"{sid}: the store's enhanced_text is not the text the client heard")
    enhanced = outcomes.latest(sid, "enhancement.completed") or {}
    ids = sorted(s["id"] for s in enhanced.get("suggestions", []))
    if sorted(s["id"] for s in stored.get("suggestions", [])) != ids:
        problems.append(f"{sid}: the store's suggestions are not the outcome's")
    if audio:
        narrated = outcomes.latest(sid, "narration.completed") or {}
        if (stored.get("audio") or {}).get("sha256") != narrated.get("sha256"):
            problems.append(f"{sid}: the store's audio sha256 is not the outcome's")
    return problems
