"""The broker goes away for a few seconds while stories keep coming: every story the
gateway accepted (202) completes exactly once, every one it refused got a retryable 503
and never runs, and ``/readyz`` said 503 meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from tests.faults.broker import Broker
from tests.faults.client import follow_through, ws_url
from tests.faults.scenario import Scenario, story_text
from tests.faults.stack import Stack
from tests.faults.submissions import Submissions
from tests.faults.submissions import check_answers as check_submissions
from tests.faults.topics import TopicLog
from tests.support import wait_until

SUBMIT_EVERY_S = 0.1
# The client submits for a few accounts in turn: the gateway admits one submission of an
# account at a time, and one account at 10 a second measures that, not the outage.
USERS = 4
BEFORE_S = 3.0
DOWN_S = 5.0
AFTER_S = 6.0
# A submission the gateway holds longer than this is neither accepted nor refused.
ANSWER_TIMEOUT_S = 30.0
# Every accepted story has completed this long after the last submission's answer (the
# wait ends early once nothing more completes for 20 s).
OUTCOMES_WITHIN_S = 90.0
# Sockets that watch a story of their own through the outage (reconnecting and resuming
# by cursor if the socket goes): what each puts together must be the outcome's.
WATCHERS = 4
WATCHERS_ACCEPTED_WITHIN_S = 20.0


async def what_is_left(stack: Stack, story_ids: list[str]) -> list[str]:
    """Per story and topic: its records' types as a read_committed and as a
    read_uncommitted reader sees them."""
    found = []
    for topic in ("segments", "outcomes", "stream"):
        for isolation in ("read_committed", "read_uncommitted"):
            async with TopicLog(stack.bootstrap, stack.topic(topic), isolation=isolation) as log:
                await asyncio.sleep(3)
                for sid in story_ids:
                    kinds = Counter(
                        f"{e.get('type')}#{e.get('attempt', '-')}" for e in log.events_of(sid)
                    )
                    found.append(f"{sid[:8]} {topic} {isolation}: {dict(kinds)}")
    return found


@pytest.mark.kafka
@pytest.mark.timeout(360)
async def test_broker_outage(own_broker: Broker, scenario: Scenario) -> None:
    # The outcome topic is read once the broker is back.
    await scenario.start(
        workers=["enhancer", "narrator"],
        bootstrap=own_broker.bootstrap,
        read_outcomes=False,
        AMPLIFY_LOCAL_PIECE_DELAY_MS="2",
    )
    tokens = [scenario.token, *[await scenario.new_user() for _ in range(USERS - 1)]]
    clients = Clients(scenario, tokens)
    async with clients.running():
        outage = await stop_and_restart(scenario, own_broker, clients)
    await clients.watched()
    try:
        await outage.restart
    except Exception as exc:
        scenario.fail(f"scripts/kafka.sh start (the restart) failed: {exc}")

    accepted = clients.submissions.accepted() + scenario.accepted
    await scenario.read_topic("outcomes")
    await scenario.settle(timeout=OUTCOMES_WITHIN_S, accepted=accepted)
    check_watchers(scenario)
    check_answers(scenario, clients, outage)
    lost = [sid for sid in dict.fromkeys(accepted) if not scenario.outcomes.completions(sid)]
    counts = scenario.count(
        len(clients.submissions.answers) + WATCHERS,
        *summary(scenario, clients, outage, accepted),
        accepted=accepted,
        tail=await what_became_of(scenario.stack, own_broker, lost) if lost else (),
    )
    assert counts.lost == 0
    assert counts.duplicated == 0
    # A failure of the bus is never a story's failure: every accepted story, those
    # POSTed during the outage too, ends completed (its status read from the outcome).
    assert counts.failed == 0
    assert counts.completed == counts.accepted
    # A submission answered 503 was not accepted and never runs later (read from the
    # outcome topic: a story with an outcome that no 202 accepted). Before the story
    # commands were committed in transactions, a clean CI run found 10 of 225.
    assert counts.unaccepted == 0
    assert not scenario.failures, "\n".join(scenario.failures[:20])


class Clients:
    """What the clients do through the outage: a submission every SUBMIT_EVERY_S for
    USERS accounts in turn, ``/readyz`` polled, and WATCHERS sockets that each follow a
    long story of their own (reconnecting and resuming by cursor if the socket goes)."""

    def __init__(self, scenario: Scenario, tokens: list[str]) -> None:
        self.scenario = scenario
        self.tokens = tokens
        self.submissions = Submissions(
            scenario,
            tokens,
            every_s=SUBMIT_EVERY_S,
            timeout_s=ANSWER_TIMEOUT_S,
            request_prefix="o",
        )
        self.ready: list[tuple[float, int | None]] = []
        self.views = [scenario.view() for _ in range(WATCHERS)]
        self._stopping = asyncio.Event()
        self._watchers: asyncio.Future[list[None]] | None = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """start: submissions and polls until the block ends; the watchers go on."""
        self._watchers = asyncio.gather(*(self._watch(i) for i in range(WATCHERS)))
        load = asyncio.gather(self.submissions.run(self._stopping), self._poll_ready())
        try:
            yield
        finally:
            self._stopping.set()
            await load

    async def watched(self) -> None:
        """recover: every watcher's story read to its end (or its failure noted)."""
        assert self._watchers is not None
        await self._watchers

    def _headers(self, i: int) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[i % USERS]}"}

    async def _poll_ready(self) -> None:
        session, base = self.scenario.session, self.scenario.gateway.base
        while not self._stopping.is_set():
            at = time.monotonic()
            try:
                async with asyncio.timeout(3), session.get(f"{base}/readyz") as res:
                    self.ready.append((at, res.status))
            except Exception:
                self.ready.append((at, None))
            await asyncio.sleep(0.2)

    async def _watch(self, i: int) -> None:
        scenario, view = self.scenario, self.views[i]
        await asyncio.sleep(BEFORE_S - 1)  # long stories, still going when it stops
        try:
            async with asyncio.timeout(BEFORE_S + DOWN_S + OUTCOMES_WITHIN_S):
                await follow_through(
                    scenario.session,
                    ws_url(scenario.gateway.base),
                    self._headers(i),
                    view,
                    story_text(i, passages=12),
                    retry_s=1,
                    log=lambda line: scenario.log(f"watcher {i}: {line}"),
                )
        except Exception as exc:
            scenario.fail(f"watcher {i} (story {view.story_id}): {exc!r}")

    def accepted(self) -> bool:
        return all(v.story_id is not None for v in self.views)


@dataclass
class Outage:
    down_at: float  # the stop began
    stopped_at: float  # the broker was down
    up_at: float  # it answered again
    mid_story: int  # watchers whose story was running when the stop began
    restart: asyncio.Task[str]  # scripts/kafka.sh start, to be awaited


async def stop_and_restart(scenario: Scenario, broker: Broker, clients: Clients) -> Outage:
    """The fault, after BEFORE_S of traffic: the broker stopped for DOWN_S, started again
    (going on once it answers), then AFTER_S more of traffic."""
    await asyncio.sleep(BEFORE_S)
    # The premise: every watcher's story is running when the broker goes (on a busy
    # machine an acceptance may take longer than BEFORE_S allows).
    with contextlib.suppress(AssertionError):  # check_watchers says it, if so
        await wait_until(
            clients.accepted, "the watchers' stories accepted", WATCHERS_ACCEPTED_WITHIN_S
        )
    scenario.log("stopping the broker")
    down_at = time.monotonic()
    mid_story = sum(1 for v in clients.views if v.story_id and v.completed is None)
    await broker.stop()
    stopped_at = time.monotonic()
    await asyncio.sleep(DOWN_S)
    scenario.log("starting the broker again")
    restart = await broker.start_until_it_answers()
    up_at = time.monotonic()
    scenario.log(f"broker back after {up_at - down_at:.1f}s")
    await asyncio.sleep(AFTER_S)
    return Outage(down_at, stopped_at, up_at, mid_story, restart)


def check_watchers(scenario: Scenario) -> None:
    """Each watcher's story was accepted before the outage, and what it put together is
    the outcome's; and some of it was audio."""
    for view in scenario.views:
        if view.story_id is None:
            scenario.fail("a watcher's story was not accepted before the outage")
    scenario.check_views()
    if not any(v.count("audio.chunk") for v in scenario.views):
        scenario.fail("no watcher heard any audio")


def check_answers(scenario: Scenario, clients: Clients, outage: Outage) -> None:
    """Every submission was accepted (202) or refused with a retryable 503; ``/readyz``
    said 503 during the outage; and stories were accepted again after it."""
    answers = clients.submissions.answers
    check_submissions(scenario, answers)
    during = [s for at, s in clients.ready if outage.stopped_at <= at <= outage.up_at]
    if 503 not in during:
        seen = sorted(set(map(str, during)))
        scenario.fail(f"/readyz during the outage answered {seen}")
    if not [a for a in answers if a.status == 202 and a.sent_at > outage.up_at]:
        scenario.fail("nothing was accepted once the broker was back")


def summary(scenario: Scenario, clients: Clients, outage: Outage, accepted: list[str]) -> list[str]:
    """count: the submissions' answers, before, while stopping, while down, after."""
    answers, up_at = clients.submissions.answers, outage.up_at
    back = [a.sent_at - up_at for a in answers if a.status == 202 and a.sent_at > up_at]
    first_back = f"{min(back):.1f}s" if back else "never"

    def phase(start: float, end: float) -> str:
        seen = Counter(str(a.status or a.error) for a in answers if start <= a.sent_at < end)
        return ", ".join(f"{n} x {what}" for what, n in seen.most_common()) or "-"

    return [
        f"submissions={len(answers)} accepted={len(accepted)} "
        f"refused_503={sum(1 for a in answers if a.status == 503)} "
        f"broker_down={up_at - outage.down_at:.1f}s (stop and restart included) "
        f"readyz_503s={sum(1 for _, s in clients.ready if s == 503)} "
        f"first_accepted_after_restart={first_back} "
        f"watchers_mid_story_at_stop={outage.mid_story}/{WATCHERS} "
        f"elapsed={scenario.elapsed:.1f}s",
        f"answers before the stop: {phase(0, outage.down_at)}",
        f"answers while stopping: {phase(outage.down_at, outage.stopped_at)}",
        f"answers while down: {phase(outage.stopped_at, up_at)}",
        f"answers after the restart: {phase(up_at, math.inf)}",
    ]


async def what_became_of(stack: Stack, broker: Broker, lost: list[str]) -> list[str]:
    """Stories without an end: what the broker says of the transactions (a hanging one
    holds read_committed readers back for good), and what each of them left on the
    topics, committed or not."""
    return [
        await broker.transactions("find-hanging", "--broker-id", "1"),
        await broker.transactions("list"),
        *await what_is_left(stack, lost[:5]),
    ]
