"""A fault test as its story, in named phases (``scenario`` fixture):

- ``start``: the service's processes, a client session, the outcome topic read from its
  start, and a user;
- the trials: each one story on a socket of its own (``Trial``), read up to where the
  fault goes in, the fault (the test's own), then ``read_to_end`` (the recovery). What
  breaks a trial is noted in ``failures`` and the next trial runs, so that one bad
  trial does not hide the counts of the others;
- ``settle``: until every accepted story has its ``story.completed`` on the outcome
  topic; ``check_views``: what each client assembled against that topic;
- ``count``: the counts line of ``test-artifacts/faults.txt``.

Each test then asserts its counts and that ``failures`` is empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NoReturn

import aiohttp

from tests.e2e.conftest import KAFKA, Proc
from tests.faults.client import StoryView, new_user, read_until, ws_url
from tests.faults.owners import owner_of
from tests.faults.report import Counts, count_stories, summarize
from tests.faults.stack import Gateway, Stack, StackFactory, with_fake_gemini
from tests.faults.topics import TopicLog

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


# The worker roles that run a story, each in a group of its own.
ROLES = ("enhancer", "narrator")
# When a story is mid-stream for a worker role: some deltas, resp. some audio.
MID_STREAM: dict[str, tuple[str, Callable[[StoryView], bool]]] = {
    "enhancer": (
        "3 deltas",
        lambda v: v.count("enhancement.delta") >= 3 and v.count("enhancement.completed") == 0,
    ),
    "narrator": (
        "1 audio chunk",
        lambda v: v.count("audio.chunk") >= 1 and v.audio_completed is None,
    ),
}


def resets(view: StoryView, role: str) -> int:
    """The resets the client heard of ``role``'s stage: each is a new attempt of it."""
    return view.enhancement_resets if role == "enhancer" else view.audio_resets


@dataclass(frozen=True)
class FakeModel:
    """The fake Gemini, run as a process of its own: a model that answers after
    ``first_token_ms``, then writes ``tokens_per_s``."""

    first_token_ms: int
    tokens_per_s: float


class Scenario:
    """One fault test's service, client and findings. ``start`` first: the attributes it
    sets (``stack``, ``gateways``, ``session``, ``outcomes``...) exist from then on."""

    stack: Stack
    gateways: list[Gateway]
    workers: list[Proc]
    session: aiohttp.ClientSession
    outcomes: TopicLog
    token: str
    # The fake model's URL, when the enhancers call it.
    fake_base: str | None = None

    def __init__(self, name: str, stacks: StackFactory, exits: contextlib.AsyncExitStack) -> None:
        self.name = name  # the test's node name: its line in faults.txt
        self._stacks = stacks
        self._exits = exits
        self.failures: list[str] = []
        self.views: list[StoryView] = []
        self.began = time.monotonic()

    # ------------------------------------------------------------ start

    async def start(
        self,
        *,
        workers: Sequence[str],
        gateways: int = 1,
        bootstrap: str = KAFKA,
        fake_model: FakeModel | None = None,
        read_outcomes: bool = True,
        **env: str,
    ) -> None:
        """Gateways and ``workers`` (roles, one process each) started at once and ready;
        a session (no pool limit: the client never queues its own requests), the outcome
        topic read from its start (unless ``read_outcomes`` is false: then call
        ``read_topic("outcomes")`` later), and a user signed up on the first gateway."""
        if fake_model is None:
            self.stack = await self._stacks(bootstrap=bootstrap, **env)
        else:
            self.stack, self.fake_base = await with_fake_gemini(
                self._stacks,
                first_token_ms=fake_model.first_token_ms,
                tokens_per_s=fake_model.tokens_per_s,
                **env,
            )
        started = await asyncio.gather(
            *(self.stack.gateway() for _ in range(gateways)),
            *(self.stack.worker(role) for role in workers),
        )
        self.gateways = [s for s in started if isinstance(s, Gateway)]
        self.workers = [s for s in started if isinstance(s, Proc)]
        connector = aiohttp.TCPConnector(limit=0)
        self.session = await self._exits.enter_async_context(
            aiohttp.ClientSession(connector=connector)
        )
        if read_outcomes:
            self.outcomes = await self.read_topic("outcomes")
        self.token = await self.new_user()
        self.began = time.monotonic()

    @property
    def gateway(self) -> Gateway:
        return self.gateways[0]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def members(self, role: str) -> list[Proc]:
        """The started workers of ``role``'s group (a new list, for the test to keep up)."""
        return [p for p in self.workers if p.name.startswith(f"{role}-")]

    async def new_user(self) -> str:
        return await new_user(self.session, self.gateway.base)

    async def read_topic(self, name: str, *, isolation: str = "read_committed") -> TopicLog:
        """The topic read from its start until the test ends (``outcomes`` becomes
        ``self.outcomes``)."""
        log = await self._exits.enter_async_context(
            TopicLog(self.stack.bootstrap, self.stack.topic(name), isolation=isolation)
        )
        if name == "outcomes":
            self.outcomes = log
        return log

    # ------------------------------------------------------------ the trials

    def view(self) -> StoryView:
        """A new client's view, counted with the others."""
        view = StoryView()
        self.views.append(view)
        return view

    def trials(self, count: int, *, each_s: float, budget_s: float | None = None) -> Trials:
        """``count`` trials of ``each_s`` seconds at most; with ``budget_s``, all of them
        within that (the rest are noted as not run)."""
        return Trials(self, count, each_s, Budget(budget_s) if budget_s is not None else None)

    def trial(self, number: int, each_s: float, budget: Budget | None = None) -> Trial:
        def timeout() -> asyncio.Timeout:
            return budget.timeout(each_s) if budget is not None else asyncio.timeout(each_s)

        return Trial(self, number, timeout)

    def fail(self, message: str) -> None:
        self.failures.append(message)

    def log(self, message: str) -> None:
        progress(self.name, message)

    # ------------------------------------------------------------ settle, check, count

    @property
    def accepted(self) -> list[str]:
        """The stories the clients got an id for."""
        return [v.story_id for v in self.views if v.story_id is not None]

    @property
    def elapsed(self) -> float:
        """Seconds since the processes were up."""
        return time.monotonic() - self.began

    async def settle(
        self,
        *,
        timeout: float,
        stall: float = 20.0,
        settle: float = 1.5,
        accepted: Sequence[str] | None = None,
    ) -> None:
        """Until each accepted story has its ``story.completed`` on the outcome topic (see
        ``TopicLog.wait_completed``)."""
        ids = self.accepted if accepted is None else accepted
        await self.outcomes.wait_completed(ids, timeout=timeout, stall=stall, settle=settle)

    def check_views(self, *, audio: bool = True) -> None:
        """Each client's story (text and audio) against the outcome topic."""
        for view in self.views:
            if view.story_id is not None:
                self.failures += view.check_against(self.outcomes, audio=audio)

    def expect_status(self, view: StoryView, status: str) -> None:
        """The ``story.completed`` the client heard says ``status``."""
        said = (view.completed or {}).get("status")
        if said != status:
            self.fail(f"{view.story_id}: story.completed status {said}, not {status}")

    def count(
        self,
        trials: int,
        *summary: str,
        accepted: Sequence[str] | None = None,
        tail: Sequence[str] = (),
    ) -> Counts:
        """The counts line, with the ``summary`` lines, the failures summed up, how the
        client saw two of the stories that failed, and ``tail``."""
        timelines = [
            f"as the client saw {v.story_id}: {v.timeline()}"
            for v in self.views
            if v.story_id is not None and any(v.story_id in f for f in self.failures)
        ][:2]
        details = [*summary, *summarize(self.failures), *timelines, *tail]
        ids = self.accepted if accepted is None else accepted
        return count_stories(self.name, trials, ids, self.outcomes, details)


class Missed(Exception):
    """A trial that could not go on (its message says why); not an error of the test."""


class Trial:
    """One story on a socket of its own, within its time. ``async with trial:`` notes
    whatever breaks the body in the scenario's failures, and the test goes on with the
    next trial; ``done`` says the body ran to its end."""

    def __init__(
        self, scenario: Scenario, number: int, timeout: Callable[[], asyncio.Timeout]
    ) -> None:
        self.scenario = scenario
        self.number = number
        self.view = scenario.view()
        self.done = False
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._timeout = timeout
        self._exits = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Trial:
        await self._exits.enter_async_context(self._timeout())
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        try:  # the socket closes, the timeout ends (a timeout raises TimeoutError here)
            if await self._exits.__aexit__(kind, exc, tb):
                return True  # swallowed on the way out (nothing here does)
        except Exception as raised:
            exc = raised
        if exc is None:
            self.done = True
            return False
        if not isinstance(exc, Exception):
            return False  # a cancel, pytest's own timeout: not the trial's to note
        if isinstance(exc, Missed):
            message = str(exc)
        else:
            last = [e.get("type") for e in self.view.events[-3:]]
            message = (
                f"trial {self.number} (story {self.view.story_id}): {exc!r}; last events {last}"
            )
        self.scenario.fail(message)
        self.scenario.log(message)
        return True

    def missed(self, message: str) -> NoReturn:
        """End the trial here, noting ``message`` as a failure."""
        raise Missed(message)

    def on_exit(self, callback: Callable[..., Any], *args: Any) -> None:
        """``callback(*args)`` when the trial ends, however it ends."""
        self._exits.callback(callback, *args)

    async def submit(self, text: str, *, base: str | None = None, **fields: Any) -> None:
        """start: a socket to the gateway (``base``: the first one), and the story on it."""
        run = self.scenario
        url = ws_url(base or run.gateway.base)
        self.ws = await self._exits.enter_async_context(
            run.session.ws_connect(url, headers=run.headers)
        )
        await self.ws.send_json({"type": "story.submit", "text": text, **fields})

    async def read_until(self, stop: Callable[[StoryView], bool]) -> None:
        assert self.ws is not None, "submit first"
        await read_until(self.ws, self.view, stop)

    async def read_to_end(self) -> None:
        """recover: the story read to its ``story.completed``."""
        assert self.ws is not None, "submit first"
        await read_until(self.ws, self.view)

    async def read_to_mid_stream(self, role: str) -> None:
        """Until the story is mid-stream for ``role`` (``MID_STREAM``)."""
        point, reached = MID_STREAM[role]
        await self.read_until(reached)
        if self.view.completed is not None or self.view.story_id is None:
            self.missed(f"trial {self.number}: the story ended before {point}")

    async def owner(self, role: str, members: list[Proc]) -> Proc:
        """The member of ``role`` running the story now, certainly: a fault that may miss
        the story would prove nothing."""
        owner = await owner_of(members, role, self.view)
        if owner is None:
            self.missed(f"trial {self.number}: {self.view.story_id}'s {role} is not certain")
        return owner


class Trials:
    """The trials of a test, one after the other, while its budget lasts."""

    def __init__(self, scenario: Scenario, count: int, each_s: float, budget: Budget | None):
        self.scenario = scenario
        self.count = count
        self.each_s = each_s
        self.budget = budget

    def __iter__(self) -> Iterator[Trial]:
        for number in range(self.count):
            if self.budget is not None and self.budget.left <= 1:
                self.scenario.fail(f"out of time: {number} of {self.count} trials ran")
                return
            yield self.scenario.trial(number, self.each_s, self.budget)


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
