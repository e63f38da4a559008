"""A worker frozen (SIGSTOP) in the middle of a story, and woken (SIGCONT) once another
member of its group has taken the story over: a zombie. It must write nothing more for
the partitions it lost: the outcome topic holds exactly one ``story.completed``,
``enhancement.completed`` and (narrated) ``narration.completed`` per story, the stream
topic holds nothing of the zombie's from after it woke (nor anything at all after the
story's ``story.completed``), the client hears the new attempt and nothing of the old one
after its reset, and the store keeps what the stream completed with.

Each trial proves the fault hit: the frozen process is the one that logged the story's
start, and the story's next attempt came from the other member, while the first was
frozen. Half the trials wake the zombie as soon as the new attempt starts (the two run
side by side), half once the story has completed.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from tests.e2e.conftest import Proc
from tests.faults.conftest import (
    RESET,
    Budget,
    Stack,
    StackFactory,
    StoryView,
    TopicLog,
    count_stories,
    fake_gemini_record,
    lines_with,
    new_user,
    owner_of,
    progress,
    read_until,
    running,
    story_text,
    summarize,
    with_fake_gemini,
    ws_url,
)

TRIALS = 5
ROLES = ("enhancer", "narrator")
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


@dataclass
class Trial:
    number: int
    view: StoryView
    audio: bool
    wake_after_completion: bool
    owner: Proc | None = None
    taken_over_by: Proc | None = None
    frozen_at: float | None = None  # wall clock, as record timestamps and the fake's
    woke_at: float | None = None
    zombie_lines_from: int = 0
    noticed: list[str] = field(default_factory=list)

    @property
    def hit(self) -> bool:
        """The fault hit: the story's owner was frozen and another member took it over."""
        return self.owner is not None and self.taken_over_by is not None


def mid_story(role: str) -> Callable[[StoryView], bool]:
    if role == "enhancer":
        return lambda v: v.count("enhancement.delta") >= 3 and v.count("enhancement.completed") == 0
    return lambda v: v.count("audio.chunk") >= 1 and v.audio_completed is None


def stage_of(event_type: str) -> str:
    return "narration" if event_type.startswith("audio.") else "enhancement"


def stream_problems(records: list[Any], trial: Trial, stale_in_flight: Counter[str]) -> list[str]:
    """What the stream topic (read uncommitted, as any watcher may) shows of the story
    that breaks the rules: a record after ``story.completed``, or of an attempt older
    than a reset before it.

    One kind is counted apart (``stale_in_flight``), not failed: records the zombie had
    handed to its producer before it froze (their timestamp, the moment of ``send``, is
    before the freeze, when it was the only writer), which its producer delivered when it
    woke. The broker takes non-transactional records from anyone; they carry their
    attempt, and the relay never passes them on (the socket checks prove it)."""
    sid = trial.view.story_id
    problems: list[str] = []
    latest_reset: dict[str, int] = {}
    completed_at: int | None = None
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
        stale = attempt is not None and int(attempt) < latest_reset.get(stage, 0)
        if completed_at is None and not stale:
            continue
        written = record.timestamp / 1000
        if trial.frozen_at is not None and written < trial.frozen_at:
            stale_in_flight[kind] += 1
            continue
        where = (
            f"after story.completed at {completed_at}"
            if completed_at is not None
            else f"after the {stage} reset to attempt {latest_reset[stage]}"
        )
        problems.append(
            f"{sid}: stream topic has {kind} of attempt {attempt} at offset {record.offset} "
            f"{where}, written {written - (trial.woke_at or 0):+.2f}s from the wake"
        )
    return problems


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


async def start_stack(stacks: StackFactory, role: str) -> tuple[Stack, str | None]:
    """Two members of ``role``'s group, one of the other, the projector and a gateway.
    The enhancer's trials use the fake Gemini in its own process (a model that writes 12
    tokens a second, as in the report); the narrator's, the paced offline analyzer."""
    if role == "enhancer":
        return await with_fake_gemini(stacks, first_token_ms=300, tokens_per_s=12)
    return await stacks(AMPLIFY_LOCAL_PIECE_DELAY_MS="60"), None


@pytest.mark.kafka
@pytest.mark.timeout(480)
@pytest.mark.parametrize("role", ROLES)
async def test_worker_frozen_and_woken(stacks: StackFactory, role: str) -> None:
    name = f"test_worker_frozen_and_woken[{role}]"
    stack, fake_base = await start_stack(stacks, role)
    other = "narrator" if role == "enhancer" else "enhancer"
    gateway, *started = await asyncio.gather(
        stack.gateway(),
        stack.worker(role),
        stack.worker(role),
        stack.worker(other),
        stack.worker("projector"),
    )
    members = [p for p in started if p.name.startswith(role)]
    trials: list[Trial] = []
    failures: list[str] = []
    reached = mid_story(role)
    budget = Budget(TRIALS_BUDGET_S)
    began = time.monotonic()
    async with (
        aiohttp.ClientSession() as session,
        TopicLog(stack.bootstrap, stack.topic("outcomes")) as outcomes,
        TopicLog(stack.bootstrap, stack.topic("stream"), isolation="read_uncommitted") as stream,
    ):
        token = await new_user(session, gateway.base)
        headers = {"Authorization": f"Bearer {token}"}
        for number in range(TRIALS):
            if budget.left <= 1:
                failures.append(f"out of time: {number} of {TRIALS} trials ran")
                break
            trial = Trial(
                number,
                StoryView(),
                audio=role == "narrator" or number % 2 == 1,
                wake_after_completion=number % 2 == 1,
            )
            trials.append(trial)
            view = trial.view
            try:
                async with (
                    budget.timeout(TRIAL_TIMEOUT_S),
                    session.ws_connect(ws_url(gateway.base), headers=headers) as ws,
                ):
                    await ws.send_json(
                        {"type": "story.submit", "text": story_text(number), "audio": trial.audio}
                    )
                    await read_until(ws, view, reached)
                    if view.completed is not None or view.story_id is None:
                        failures.append(f"trial {number}: the story ended before mid-story")
                        continue
                    owner = await owner_of(members, role, view)
                    if owner is None:
                        failures.append(
                            f"trial {number}: the owner of {view.story_id} is not certain"
                        )
                        continue
                    trial.owner = owner
                    await freeze_and_wake(trial, ws, members, role, name)
            except Exception as exc:
                failures.append(
                    f"trial {number} (story {view.story_id}): {exc!r}; "
                    f"last events {[e.get('type') for e in view.events[-3:]]}"
                )
                progress(name, failures[-1])
            finally:
                for proc in members:  # never leave a process stopped
                    if proc.process.returncode is None:
                        proc.process.send_signal(signal.SIGCONT)
            if trial.owner is not None and trial.woke_at is not None:
                # The zombie found out: it logs losing its partitions once it wakes.
                owner = trial.owner
                deadline = time.monotonic() + NOTICED_WITHIN_S
                while time.monotonic() < deadline and not trial.noticed:
                    trial.noticed = lines_with(owner, "revoked", trial.zombie_lines_from)
                    await asyncio.sleep(0.1)
                if not trial.noticed:
                    failures.append(
                        f"trial {number}: {owner.name} logged no revocation "
                        f"{NOTICED_WITHIN_S} s after it woke"
                    )
                # Back in its group before the next trial, so that trial's story does
                # not move with the rebalance its return causes.
                try:
                    await owner.wait_for_line("assigned", 15, start=trial.zombie_lines_from)
                except TimeoutError:
                    failures.append(f"trial {number}: {owner.name} did not rejoin its group")

        accepted = [t.view.story_id for t in trials if t.view.story_id is not None]
        await outcomes.wait_completed(accepted, timeout=60, stall=20, settle=3)
        stale_in_flight: Counter[str] = Counter()
        calls = (await fake_gemini_record(session, fake_base))["calls"] if fake_base else []
        timelines: list[str] = []
        for trial in trials:
            view, sid = trial.view, trial.view.story_id
            if sid is None or not trial.hit:
                if sid is not None and trial.owner is not None:
                    failures.append(f"{sid}: no takeover while its {role} was frozen")
                continue
            if view.completed is None:
                failures.append(f"{sid}: no story.completed on the socket")
                continue
            failures += view.check_against(outcomes, audio=trial.audio)
            kinds = Counter(e.get("type") for e in outcomes.events_of(sid))
            expected = {"story.completed": 1, "enhancement.completed": 1}
            if trial.audio:
                expected["narration.completed"] = 1
            for kind, n in expected.items():
                if kinds[kind] != n:
                    failures.append(f"{sid}: {kinds[kind]} x {kind} on the outcome topic")
            records = [r for r in stream.records if r.key and r.key.decode() == sid]
            failures += stream_problems(records, trial, stale_in_flight)
            stored = await stored_story(session, gateway.base, token, sid, timeout=15)
            failures += store_problems(stored, view, outcomes, trial.audio)
            if fake_base and not trial.wake_after_completion:
                # The zombie's model stream was open while it was frozen; once it woke
                # and lost the story, it closed it rather than reading it to the end.
                assert trial.frozen_at is not None
                mine = [
                    c
                    for c in calls
                    if c["method"] == "streamGenerateContent"
                    and c["started_at"] < trial.frozen_at
                    and (c["ended_at"] is None or c["ended_at"] > trial.frozen_at)
                ]
                if [c["state"] for c in mine] != ["disconnected"]:
                    failures.append(
                        f"{sid}: the frozen enhancer's model streams ended "
                        f"{[c['state'] for c in mine]}, not one closed by it"
                    )
            if any(sid in f for f in failures) and len(timelines) < 2:
                timelines.append(f"as the client saw {sid}: {view.timeline()}")
        if calls and (still := [c for c in calls if c["state"] == "open"]):
            failures.append(f"{len(still)} model call(s) still open at the end")
        # What the zombies logged once woken: writes their lease held back, transactions
        # the broker fenced (none expected: the lease stops them first; the fence is
        # proven on its own by tests/integration/test_outcome_fencing.py), revocations,
        # and the records' work handed over to the new owner.
        noticed = Counter(
            kind
            for t in trials
            if t.owner is not None
            for line in t.owner.output[t.zombie_lines_from :]
            for kind, needle in ZOMBIE_LOG.items()
            if needle in line
        )
        details = [
            f"faults_hit={sum(t.hit for t in trials)}/{TRIALS} "
            + " ".join(f"{kind}={noticed[kind]}" for kind in ZOMBIE_LOG)
            + f" stale_in_flight={dict(stale_in_flight)} "
            f"session_timeout_ms={stack.env['AMPLIFY_KAFKA_SESSION_TIMEOUT_MS']} "
            f"elapsed={time.monotonic() - began:.1f}s",
            *summarize(failures),
            *timelines,
        ]
        counts = count_stories(name, TRIALS, accepted, outcomes, details)
    assert counts.lost == 0
    assert counts.duplicated == 0
    assert sum(t.hit for t in trials) == TRIALS, "a trial's fault did not hit"
    assert not failures, "\n".join(failures[:20])


async def freeze_and_wake(
    trial: Trial, ws: aiohttp.ClientWebSocketResponse, members: list[Proc], role: str, name: str
) -> None:
    """Freeze the owner; once another member's reset is on the socket (its new attempt
    started), wake it, at once or after ``story.completed``; then read the story out."""
    view, owner = trial.view, trial.owner
    assert owner is not None and view.story_id is not None
    owner.process.send_signal(signal.SIGSTOP)
    trial.frozen_at = time.time()
    progress(name, f"trial {trial.number}: {view.story_id}: froze {owner.name}")
    resets = view.count(RESET[role])
    async with asyncio.timeout(TAKEOVER_WITHIN_S):
        await read_until(ws, view, lambda v: v.count(RESET[role]) > resets)
    if view.completed is not None:
        raise AssertionError("the story completed while its owner was frozen, with no reset")
    # The new attempt's start was logged by another member: the fault hit.
    attempt = int([e for e in view.events if e.get("type") == RESET[role]][-1]["attempt"])
    others = [p for p in members if p is not owner]
    taken = await running(others, role, view.story_id, attempt, timeout=5)
    if len(taken) == 1:
        trial.taken_over_by = taken[0]
    if trial.wake_after_completion:
        await read_until(ws, view)
    trial.zombie_lines_from = len(owner.output)
    owner.process.send_signal(signal.SIGCONT)
    trial.woke_at = time.time()
    progress(
        name,
        f"trial {trial.number}: woke {owner.name} "
        f"{trial.woke_at - trial.frozen_at:.1f}s later (attempt {attempt} by "
        f"{trial.taken_over_by.name if trial.taken_over_by else '?'}, "
        f"{'completed' if view.completed else 'running'})",
    )
    await read_until(ws, view)
