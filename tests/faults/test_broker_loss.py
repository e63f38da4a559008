"""A broker of three dies (``kill -9``) while stories stream and documents are typed
(issue 25, "a broker can die"). Real processes on a three-node KRaft cluster of the
test's own (tests/faults/cluster.py): a gateway, an enhancer, a narrator and a documents
worker, bootstrapped with all three brokers.

The premise, read from the cluster: every topic of the service has three replicas and
``min.insync.replicas`` 2 (``kafka_topics.topic_configs``). The fault is aimed: one broker
is put in the lead of every partition of the service's topics and of the internal ones
(offsets, transaction state: the group and transaction coordinators too), and that broker
is killed while sockets watch long stories of their own, stories are POSTed, and writers
type live documents key by key. The proof it hit, from the cluster's metadata: the
killed broker led, at the kill, every partition of the stories, stream and outcomes topics
(and of the edit log) that the stories and documents in flight use, and each of them had
a new leader afterwards.

And then: every accepted story (the watchers', every 202) ends ``completed``, once, and
none answered 503 ever runs; what each watcher put together is the outcome's, text and
audio; every POST got a 202 or a retryable 503. The writers do what a client does when an
edit is refused (``unavailable``, then ``version_conflict`` or ``rate_limited`` for those
behind it): open the document again, whose text must be theirs at the version the service
has, and type the refused keys again; in the end every edit has its own ``doc.ack`` and,
reopened on a new socket, each document has the writer's text and version (every
acknowledged edit, none twice). The counts line (stories) and the documents' and
leadership facts go to ``test-artifacts/faults.txt``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from amplify_stream.bus.kafka_topics import KafkaTopics
from amplify_stream.bus.partitioner import partition_for_key
from amplify_stream.client.live import LiveDocument
from tests.faults.client import follow_through, ws_url
from tests.faults.cluster import (
    Cluster,
    PartitionState,
    TopicPartition,
    lead_partitions,
    new_leaders,
    partitions,
    topic_configs,
)
from tests.faults.scenario import Scenario, story_text
from tests.faults.stack import Stack
from tests.faults.submissions import Submissions, check_answers
from tests.faults.test_document_owner_crash import KEYS, Typing, note_acks, type_key
from tests.faults.topics import TopicLog
from tests.live_documents import Writer, check_marks, writer
from tests.support import wait_until

# The service's topics (all on the victim), and those the fault is proven on.
SERVICE_TOPICS = (
    "stories",
    "stream",
    "outcomes",
    "dlq",
    "segments",
    "documents",
    "document-snapshots",
)
PROVEN_ON = ("stories", "stream", "outcomes", "documents")
INTERNAL_TOPICS = ("__consumer_offsets", "__transaction_state")
REPLICAS = 3
MIN_INSYNC = "2"

# Sockets that each watch a long story of their own through the kill.
WATCHERS = 3
WATCH_PASSAGES = 4
# Stories POSTed, for a few accounts in turn, from the start until AFTER_S past the
# election.
USERS = 3
SUBMIT_EVERY_S = 0.3
ANSWER_TIMEOUT_S = 20.0
# Writers typing a live document each (30 keys a second), through the kill.
WRITERS = 2
# Traffic before the kill (at least: until every watcher is mid-story and every writer
# has typed), and after every partition has a new leader.
BEFORE_S = 3.0
READY_WITHIN_S = 30.0
AFTER_S = 4.0
# The dead broker is fenced 3 s after its last heartbeat (cluster.py), then the
# controller elects; more than this is a failure of its own.
ELECTED_WITHIN_S = 20.0
OUTCOMES_WITHIN_S = 60.0


@pytest.mark.kafka
@pytest.mark.timeout(210)
async def test_broker_killed_under_load(cluster: Cluster, scenario: Scenario) -> None:
    await scenario.start(workers=["enhancer", "narrator", "documents"], bootstrap=cluster.bootstrap)
    topics = [scenario.stack.topic(name) for name in SERVICE_TOPICS]
    await check_premise(cluster, topics)
    await check_weaker_named(cluster, topics)
    fault = await aim(scenario, cluster, topics)

    tokens = [scenario.token, *[await scenario.new_user() for _ in range(USERS - 1)]]
    writer_tokens = [await scenario.new_user() for _ in range(WRITERS)]
    load = Load(scenario, tokens, writer_tokens)
    async with load.running():
        await kill_the_leader(scenario, cluster, load, fault)
    await load.finished()

    accepted = load.submissions.accepted() + scenario.accepted
    await scenario.settle(timeout=OUTCOMES_WITHIN_S, accepted=accepted)
    check_answers(scenario, load.submissions.answers)
    scenario.check_views()
    for view in load.views:
        scenario.expect_status(view, "completed")
        if view.story_id is None:
            scenario.fail("a watcher's story was never accepted")
    stalled = [t.doc_id for t in load.typings if t.doc_id and not t.acked_at]
    counts = scenario.count(
        len(load.submissions.answers) + WATCHERS,
        *fault.summary(),
        *load.summary(fault),
        accepted=accepted,
        tail=await documents_left(scenario.stack, stalled) if stalled else (),
    )
    assert fault.hit, fault.missed
    assert counts.lost == 0
    assert counts.duplicated == 0
    assert counts.failed == 0
    assert counts.completed == counts.accepted
    assert counts.unaccepted == 0
    assert load.edits_lost == 0, f"{load.edits_lost} acknowledged edits lost"
    assert not scenario.failures, "\n".join(scenario.failures[:20])


# ------------------------------------------------------------ the premise and the aim


async def check_premise(cluster: Cluster, topics: list[str]) -> None:
    """The service created its topics with three replicas and min.insync.replicas 2."""
    found = await partitions(cluster.bootstrap, topics)
    assert {t for t, _ in found} == set(topics), f"topics missing: {set(topics) - set(found)}"
    thin = {tp: s.replicas for tp, s in found.items() if len(s.replicas) != REPLICAS}
    assert not thin, f"partitions without {REPLICAS} replicas: {thin}"
    configured = await topic_configs(cluster.bootstrap, topics, "min.insync.replicas")
    wrong = {t: configured.get(t) for t in topics if configured.get(t) != MIN_INSYNC}
    assert not wrong, f"min.insync.replicas is not {MIN_INSYNC}: {wrong}"


async def check_weaker_named(cluster: Cluster, topics: list[str]) -> None:
    """What the service's start warns of on this cluster (``KafkaTopics.ensure`` for
    topics that already exist): a topic made by hand with one replica and the broker's
    min.insync.replicas of 1 is named, with both shortfalls; the service's own are not."""
    legacy = f"{topics[0]}.legacy"
    admin = AIOKafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(legacy, 1, 1)])
        findings = await KafkaTopics(admin, 1).weaker_than_created([legacy, *topics], REPLICAS)
        await admin.delete_topics([legacy])
    finally:
        await admin.close()
    assert len(findings) == 1, findings
    assert findings[0].startswith(f"{legacy}: replication factor 1"), findings
    assert "min.insync.replicas 1 (new topics get 2" in findings[0], findings


@dataclass
class Fault:
    victim: int
    moved: list[TopicPartition]
    names: dict[str, str]  # the service's topic name -> its short name
    at_kill: dict[TopicPartition, PartitionState] = field(default_factory=dict)
    in_use: dict[str, set[int]] = field(default_factory=dict)
    after: dict[TopicPartition, PartitionState] | None = None
    killed_at: float | None = None
    elected_s: float | None = None
    watchers_mid_story: int = 0
    missed: str = ""

    def short(self, topic: str) -> str:
        return self.names.get(topic, topic)

    def led(self, short: str) -> list[int]:
        ours = [(p, s) for (t, p), s in self.at_kill.items() if self.short(t) == short]
        return sorted(p for p, s in ours if s.leader == self.victim)

    @property
    def hit(self) -> bool:
        """The killed broker led every partition in use of the proven topics, and each
        of those got a new leader."""
        if self.killed_at is None or self.after is None or not self.in_use:
            self.missed = self.missed or "no kill, or no new leaders after it"
            return False
        for short in PROVEN_ON:
            used = self.in_use.get(short, set())
            if not used:
                self.missed = f"no {short} partition in use at the kill"
                return False
            if not used <= set(self.led(short)):
                self.missed = (
                    f"broker {self.victim} led {short} {self.led(short)} at the kill, "
                    f"not all of those in use {sorted(used)}"
                )
                return False
        return True

    def summary(self) -> list[str]:
        def partitions_of(states: dict[TopicPartition, PartitionState], short: str) -> str:
            return " ".join(
                f"{p}:{s.leader}{list(s.isr)}"
                for (t, p), s in sorted(states.items())
                if self.short(t) == short
            )

        lines = [
            f"killed broker {self.victim} (kill -9), leader at the kill of "
            + ", ".join(f"{short} {self.led(short)}" for short in (*PROVEN_ON, *INTERNAL_TOPICS))
            + "; in use: "
            + ", ".join(f"{s} {sorted(self.in_use.get(s, ()))}" for s in PROVEN_ON)
            + f"; watchers mid-story {self.watchers_mid_story}/{WATCHERS}",
        ]
        if self.after is not None:
            lines.append(
                f"new leaders within {self.elected_s:.1f}s of the kill (partition:leader[isr]): "
                + "; ".join(
                    f"{short} {partitions_of(self.after, short)}"
                    for short in (*PROVEN_ON, *INTERNAL_TOPICS)
                )
            )
        else:
            lines.append(f"no new leaders within {ELECTED_WITHIN_S:g}s of the kill")
        return lines


async def aim(scenario: Scenario, cluster: Cluster, topics: list[str]) -> Fault:
    """The victim: the broker leading most partitions of the proven topics; it is put in
    the lead of every partition of the service's topics and the internal ones."""
    names = {scenario.stack.topic(short): short for short in SERVICE_TOPICS}
    now = await partitions(cluster.bootstrap, [*topics, *INTERNAL_TOPICS])
    leading = Counter(s.leader for (t, _), s in now.items() if names.get(t) in PROVEN_ON)
    victim = min(leading, key=lambda b: (-leading[b], b))
    moved = sorted(now)
    await lead_partitions(cluster.bootstrap, moved, victim)
    scenario.log(f"broker {victim} leads all {len(moved)} partitions")
    return Fault(victim, moved, names)


async def kill_the_leader(scenario: Scenario, cluster: Cluster, load: Load, fault: Fault) -> None:
    """Once every watcher is mid-story and every writer typing (BEFORE_S at least): what
    the victim leads, which partitions are in use, the kill, and the new leaders; then
    AFTER_S more traffic."""
    await asyncio.sleep(BEFORE_S)
    try:
        await wait_until(load.going, "every watcher mid-story, every writer typing", READY_WITHIN_S)
    except AssertionError as exc:
        scenario.fail(f"the load before the kill: {exc}")
    fault.at_kill = await partitions(cluster.bootstrap, sorted({t for t, _ in fault.moved}))
    fault.in_use = load.in_use(fault)
    fault.watchers_mid_story = sum(1 for v in load.views if v.story_id and v.completed is None)
    fault.killed_at = await cluster.kill(fault.victim)
    scenario.log(f"killed broker {fault.victim}")
    fault.after = await new_leaders(cluster.bootstrap, fault.moved, fault.victim, ELECTED_WITHIN_S)
    fault.elected_s = time.monotonic() - fault.killed_at
    scenario.log(f"new leaders {fault.elected_s:.1f}s after the kill")
    await asyncio.sleep(AFTER_S)


# ------------------------------------------------------------ the load


class Load:
    """What the clients do through the kill: POSTs every SUBMIT_EVERY_S for USERS
    accounts in turn, WATCHERS sockets following a long story each (reconnecting and
    resuming by cursor if the socket goes), and WRITERS typing a document each."""

    def __init__(self, scenario: Scenario, tokens: list[str], writer_tokens: list[str]) -> None:
        self.scenario = scenario
        self.tokens = tokens
        self.writer_tokens = writer_tokens
        self.submissions = Submissions(
            scenario,
            tokens,
            every_s=SUBMIT_EVERY_S,
            timeout_s=ANSWER_TIMEOUT_S,
            request_prefix="b",
        )
        self.views = [scenario.view() for _ in range(WATCHERS)]
        self.typings = [Typing(i) for i in range(WRITERS)]
        self.docs: list[LiveDocument | None] = [None] * WRITERS
        # Per writer: the error frames already answered by a reopen, the reopens, and
        # the errors heard by code.
        self.refusals = [0] * WRITERS
        self.reopens = [0] * WRITERS
        self.errors: list[Counter[str]] = [Counter() for _ in range(WRITERS)]
        self.edits_lost = 0
        self.killed_at: float | None = None
        self._stopping = asyncio.Event()
        self._watchers: asyncio.Future[list[None]] | None = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        self._watchers = asyncio.gather(
            *(self._watch(i) for i in range(WATCHERS)),
            *(self._write(i) for i in range(WRITERS)),
        )
        submitter = asyncio.ensure_future(self.submissions.run(self._stopping))
        try:
            yield
        finally:
            self._stopping.set()
            await submitter

    async def finished(self) -> None:
        """Every watcher's story read to its end, every document settled and reopened."""
        assert self._watchers is not None
        await self._watchers

    def going(self) -> bool:
        return all(
            v.story_id is not None and v.completed is None and v.count("enhancement.delta") >= 3
            for v in self.views
        ) and all(doc is not None and doc.acked >= 10 for doc in self.docs)

    def in_use(self, fault: Fault) -> dict[str, set[int]]:
        """The partitions of the proven topics that the stories in flight (the watchers'
        and the POSTed ones not yet completed) and the documents typed hash to."""
        counts = Counter(fault.short(t) for t, _ in fault.at_kill)
        stories = [v.story_id for v in self.views if v.story_id and v.completed is None]
        stories += self.submissions.accepted()[-10:]
        used: dict[str, set[int]] = {}
        for short in ("stories", "stream", "outcomes"):
            used[short] = {partition_for_key(s, counts[short]) for s in stories}
        used["documents"] = {
            partition_for_key(t.doc_id, counts["documents"]) for t in self.typings if t.doc_id
        }
        return used

    def _headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async def _watch(self, i: int) -> None:
        scenario, view = self.scenario, self.views[i]
        try:
            async with asyncio.timeout(READY_WITHIN_S + ELECTED_WITHIN_S + OUTCOMES_WITHIN_S):
                await follow_through(
                    scenario.session,
                    ws_url(scenario.gateway.base),
                    self._headers(self.tokens[i % USERS]),
                    view,
                    story_text(i, WATCH_PASSAGES),
                    retry_s=0.5,
                    log=lambda line: scenario.log(f"watcher {i}: {line}"),
                )
        except Exception as exc:
            scenario.fail(f"watcher {i} (story {view.story_id}): {exc!r}")

    async def _write(self, i: int) -> None:
        """A document typed key by key until the load stops, as a client does it: an edit
        refused (``unavailable`` while the edit log has no leader, then
        ``version_conflict`` for the edits sent after it) reopens the document, whose text
        must be the writer's at the version the service has, and the keys not applied are
        typed again. Then settled, every edit's own ack counted, and reopened on a new
        socket."""
        scenario, typing = self.scenario, self.typings[i]
        base, token = scenario.gateway.base, self.writer_tokens[i]
        try:
            async with writer(scenario.session, base, token) as w:
                doc = await w.open(f"Writer {i + 1}.\n", title=f"Writer {i + 1}")
                self.docs[i] = doc
                typing.doc_id = doc.doc_id
                typing.text_at[0] = doc.text
                intended = doc.text  # what the writer has typed, applied or not
                keys = 0
                while not self._stopping.is_set():
                    errors = len(w.of("error"))
                    if errors > self.refusals[i]:
                        doc = await self._caught_up(i, w, typing, intended)
                        self.refusals[i] = len(w.of("error"))
                        continue
                    have = len(doc.text)
                    key = intended[have] if have < len(intended) else KEYS[keys % len(KEYS)]
                    if have >= len(intended):
                        keys += 1
                        intended += key
                    await type_key(w, doc, typing, key)
                while True:  # the last refusals: caught up, and every key typed again
                    await asyncio.sleep(1.0)  # the answers to the edits in flight
                    if len(w.of("error")) > self.refusals[i]:
                        doc = await self._caught_up(i, w, typing, intended)
                        self.refusals[i] = len(w.of("error"))
                    elif len(doc.text) >= len(intended):
                        break
                    for key in intended[len(doc.text) :]:
                        await type_key(w, doc, typing, key)
                await w.settled(timeout=OUTCOMES_WITHIN_S)
                note_acks(scenario, w, typing)
                self.errors[i] = Counter(
                    str((e.get("error") or {}).get("code", e.get("code"))) for e in w.of("error")
                )
                check_marks(doc)
            await self._reopen(i, typing, doc)
        except Exception as exc:
            last = self.docs[i]
            where = (
                f"version {last.version}, acked {last.acked}, analyzed "
                f"{(last.analyzed or {}).get('version')}"
                if last is not None
                else "not opened"
            )
            scenario.fail(f"writer {i} ({typing.doc_id}): {exc!r}; {where}")

    async def _caught_up(self, i: int, w: Writer, typing: Typing, intended: str) -> LiveDocument:
        """The document opened again on the same socket after a refusal: its text must be
        the writer's at the version the service has (no acknowledged edit lost, none
        applied twice, nothing refused applied)."""
        await asyncio.sleep(0.2)  # the answers to the edits in flight
        assert typing.doc_id is not None
        # Not w.reopen: an answer to an edit sent before (a late version_conflict) may
        # come before doc.opened.
        w.doc = None
        await w.send({"type": "doc.open", "doc_id": typing.doc_id})
        await w.until(lambda: w.doc is not None, "doc.opened after a refusal")
        doc = w.doc
        assert doc is not None
        self.docs[i] = doc
        self.reopens[i] += 1
        if typing.text_at.get(doc.version) != doc.text or not intended.startswith(doc.text):
            self.scenario.fail(
                f"writer {i}: {doc.doc_id} reopened after a refusal at version {doc.version}: "
                f"{len(doc.text)} chars, the writer had "
                f"{len(typing.text_at.get(doc.version, ''))} at that version"
            )
        return doc

    async def _reopen(self, i: int, typing: Typing, doc: LiveDocument) -> None:
        """The document on a new socket: the writer's text and version."""
        scenario = self.scenario
        async with writer(scenario.session, scenario.gateway.base, self.writer_tokens[i]) as w2:
            again = await w2.reopen(doc.doc_id)
            await w2.settled(timeout=30)
        typing.kept = sum(1 for v in typing.acked_at if again.text.startswith(typing.text_at[v]))
        typing.applied_twice = max(0, again.version - doc.version)
        self.edits_lost += typing.lost
        if (again.text, again.version) != (doc.text, doc.version):
            scenario.fail(
                f"writer {i}: {doc.doc_id} reopened: version {again.version}, "
                f"{len(again.text)} chars; the writer's: version {doc.version}, "
                f"{len(doc.text)} chars"
            )

    def summary(self, fault: Fault) -> list[str]:
        killed = fault.killed_at or float("inf")
        answers = self.submissions.answers
        during = [a for a in answers if a.sent_at >= killed]
        answered = Counter(str(a.status or a.error) for a in answers)
        slowest = max((d for t in self.typings for d in t.delays.values()), default=0.0)
        sent = sum(len(t.sent_at) for t in self.typings)
        acked = sum(len(t.acked_at) for t in self.typings)
        answered_text = ", ".join(f"{n} x {s}" for s, n in answered.items())
        refused = [a.sent_at - killed for a in during if a.status == 503]
        back = [a.sent_at - killed for a in during if a.status == 202]
        window = f"{min(refused):.1f}..{max(refused):.1f}s" if refused else "none"
        first_back = f"{min(back):.1f}s" if back else "never"
        return [
            f"submissions={len(answers)} ({answered_text}) "
            f"after the kill={len(during)} (503s sent {window} after it; the first 202 "
            f"sent {first_back} after it) "
            f"elapsed={self.scenario.elapsed:.1f}s",
            f"documents={WRITERS} edits_sent={sent} acked={acked} "
            f"kept={sum(t.kept for t in self.typings)} lost={self.edits_lost} "
            f"applied_twice={sum(t.applied_twice for t in self.typings)} "
            f"acks_repeated={sum(t.acks_repeated for t in self.typings)} "
            f"slowest_ack={slowest:.2f}s reopens={sum(self.reopens)} "
            f"refused={dict(sum(self.errors, Counter()))}",
        ]


async def documents_left(stack: Stack, doc_ids: list[str]) -> list[str]:
    """Per document whose edits were not all acknowledged: its records' types on the edit
    log and on the stream topic, and the last version of each."""
    found = []
    for topic in ("documents", "stream"):
        name = stack.topic(topic)
        async with TopicLog(stack.bootstrap, name, isolation="read_uncommitted") as log:
            await asyncio.sleep(3)
            for doc_id in doc_ids:
                events = [e for e in log.events() if e.get("doc_id") == doc_id]
                kinds = Counter(str(e.get("type")) for e in events)
                last = max((int(e.get("version") or 0) for e in events), default=None)
                found.append(f"{doc_id[:8]} {topic}: {dict(kinds)} last version {last}")
    return found
