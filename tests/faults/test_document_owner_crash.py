"""A document owner killed (SIGKILL) while its writer types (docs/protocol.md section 6:
"An acknowledged edit is never lost"). Real processes: a gateway and two ``worker
documents``; the writer types key by key over the WebSocket, and at a random moment the
member that owns the document's partition of the edit log is killed. The writer goes on
typing; the other member takes the partition over (its snapshots, then the log after the
committed place) and acknowledges what the dead one had not.

Each trial proves the fault hit: the killed process is the one the group coordinator had
assigned the document's partition to (``owners.partition_owner``), and edits sent after
the kill were acknowledged (by another process, then). And then:

- every edit gets its own ``doc.ack`` (late across the kill, never missing), and no
  ``error`` at all (no ``version_conflict``: the edits are in the log, in order);
- the open is answered once: the new owner folds the creation again when the kill came
  before the document's first snapshot, and the socket does not hear it twice (the
  counts say how many kills came that early);
- the document settles: every edit acknowledged, ``doc.analyzed`` for its last version;
  every mark the writer holds slices its quote;
- reopened on a new socket, the document has the writer's text and version (every
  acknowledged edit, none twice), and the writer's live set.

A replacement member starts at each kill, so each trial has two owners to choose from.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field

import pytest

from amplify_stream.client.live import LiveDocument
from amplify_stream.text.edits import Change, utf16_length
from tests.e2e.conftest import Proc
from tests.faults.owners import document_owner
from tests.faults.report import Counts, report, summarize
from tests.faults.scenario import Scenario, Trial, rng_for
from tests.faults.test_worker_crash import kill, replacements_joined
from tests.faults.topics import TopicLog
from tests.live_documents import Writer, check_marks, writer

ROLE = "documents"
TRIALS = 6  # 10 took 52 s of a CI run near its 18 min (issue 24)
# A steady writer: a key every 33 ms, well under the gateway's 60 edits a second.
KEYS_PER_S = 30
# What the writer types, over and over: words, a line break, accents and a surrogate pair.
KEYS = "Mara was very angry at the wall. The the waves 🌊 were loud, Élodie said.\n"
# Typing before the kill, in seconds (the first checkpoint comes 1 s after the owner's
# assignment: a kill before it leaves the creation itself to be folded again).
KILL_AFTER_S = (0.2, 2.0)
# Typing after the first acknowledgement of an edit sent after the kill.
TYPING_AFTER_TAKEOVER_S = 1.0
# From the kill: the session timeout (3 s), the rebalance, the new owner's fence and
# snapshots, its fold of the log after the committed place.
TAKEOVER_WITHIN_S = 20
TRIAL_TIMEOUT_S = 45
# For all trials; the rest of the 240 s is start-up and teardown.
TRIALS_BUDGET_S = 190
# An acknowledgement slower than this is counted late (they take milliseconds otherwise).
LATE_S = 1.0


@dataclass
class Typing:
    """One trial: its document as the writer typed it, and what the fault did."""

    number: int
    doc_id: str | None = None
    partition: int | None = None
    owner: Proc | None = None
    killed_at: float | None = None
    killed_wall_ms: int | None = None  # the kill, as record timestamps count
    version_at_kill: int = 0
    takeover_s: float | None = None  # kill -> first ack of an edit sent after it
    # Per version: when its edit was sent (monotonic), and the text it made.
    sent_at: dict[int, float] = field(default_factory=dict)
    text_at: dict[int, str] = field(default_factory=dict)
    # Per version: when its first doc.ack arrived.
    acked_at: dict[int, float] = field(default_factory=dict)
    acks_repeated: int = 0
    kept: int = 0  # acknowledged edits in the reopened text
    applied_twice: int = 0

    @property
    def hit(self) -> bool:
        return self.owner is not None and self.takeover_s is not None

    @property
    def lost(self) -> int:
        return len(self.acked_at) - self.kept

    @property
    def delays(self) -> dict[int, float]:
        return {v: t - self.sent_at[v] for v, t in self.acked_at.items() if v in self.sent_at}


@pytest.mark.kafka
@pytest.mark.timeout(240)
async def test_document_owner_killed_mid_typing(scenario: Scenario) -> None:
    await scenario.start(workers=[ROLE, ROLE], read_outcomes=False)
    snapshots = await scenario.read_topic("document-snapshots")
    members = scenario.members(ROLE)
    rng, seed = rng_for(scenario.name)
    typings: list[Typing] = []
    for trial in scenario.trials(TRIALS, each_s=TRIAL_TIMEOUT_S, budget_s=TRIALS_BUDGET_S):
        typing = Typing(trial.number)
        typings.append(typing)
        async with trial:
            await one_trial(scenario, trial, typing, members, rng.uniform(*KILL_AFTER_S))

    await replacements_joined(scenario, members, ROLE)
    counts = count(scenario, typings, seed, snapshots)
    assert counts.lost == 0
    assert counts.duplicated == 0
    assert sum(t.hit for t in typings) == TRIALS, "a trial's owner was not killed"
    assert not scenario.failures, "\n".join(scenario.failures[:20])


async def one_trial(
    scenario: Scenario, trial: Trial, typing: Typing, members: list[Proc], kill_after: float
) -> None:
    stack, base = scenario.stack, scenario.gateway.base
    async with writer(scenario.session, base, scenario.token) as w:
        doc = await w.open(f"Trial {trial.number + 1}.\n", title=f"Trial {trial.number + 1}")
        typing.doc_id = doc.doc_id
        typing.text_at[0] = doc.text
        owner, typing.partition = await document_owner(
            members,
            stack.bootstrap,
            f"{stack.env['AMPLIFY_TOPIC_PREFIX']}.{ROLE}",
            stack.topic(ROLE),
            doc.doc_id,
        )
        if owner is None:
            trial.missed(f"trial {trial.number}: the owner of {doc.doc_id} is not certain")

        stop = asyncio.Event()
        typist = asyncio.create_task(type_keys(w, doc, typing, stop))
        try:
            await asyncio.sleep(kill_after)
            if typist.done():
                typist.result()
            typing.version_at_kill = doc.version
            typing.killed_wall_ms = int(time.time() * 1000)
            typing.killed_at = await kill(owner)
            typing.owner = owner
            members.remove(owner)
            members.append(await stack.worker(ROLE, wait=False))
            scenario.log(
                f"trial {trial.number}: {doc.doc_id} (partition {typing.partition}): killed "
                f"{owner.name} at version {typing.version_at_kill}, {kill_after:.2f}s in"
            )
            # The takeover: an edit sent after the kill is acknowledged (by another member).
            await w.until(
                lambda: doc.acked > typing.version_at_kill,
                f"an ack for version {typing.version_at_kill + 1} after the kill",
                TAKEOVER_WITHIN_S,
            )
            typing.takeover_s = time.monotonic() - typing.killed_at
            await asyncio.sleep(TYPING_AFTER_TAKEOVER_S)
        finally:
            stop.set()
            await typist
        await w.settled(timeout=30)
        note_acks(scenario, w, typing)
        scenario.log(
            f"trial {trial.number}: {doc.version} edits, acks after the kill within "
            f"{typing.takeover_s:.1f}s, slowest ack {max(typing.delays.values()):.1f}s"
        )
        if len(w.of("doc.opened")) != 1:
            scenario.fail(
                f"trial {trial.number}: {doc.doc_id}: doc.opened heard "
                f"{len(w.of('doc.opened'))} times for one doc.open"
            )
        for error in w.of("error"):
            scenario.fail(f"trial {trial.number}: {doc.doc_id}: error {error}")
        try:
            check_marks(doc)
        except AssertionError as exc:
            scenario.fail(f"trial {trial.number}: {doc.doc_id}: the writer's marks: {exc}")
    await reopened(scenario, trial, typing, doc)


async def type_keys(w: Writer, doc: LiveDocument, typing: Typing, stop: asyncio.Event) -> None:
    """Key by key at the end of the text, ``KEYS_PER_S`` a second, until ``stop``."""
    keys = 0
    while not stop.is_set():
        await type_key(w, doc, typing, KEYS[keys % len(KEYS)])
        keys += 1


async def type_key(w: Writer, doc: LiveDocument, typing: Typing, key: str) -> None:
    """One key at the end of the text, noted in ``typing``, then the pause to the next."""
    end = utf16_length(doc.text)
    sent = time.monotonic()
    version = await w.edit(Change(end, end, key))
    typing.sent_at[version] = sent
    typing.text_at[version] = doc.text
    await asyncio.sleep(1 / KEYS_PER_S)


def note_acks(scenario: Scenario, w: Writer, typing: Typing) -> None:
    """When each version's own doc.ack first came; one never heard is a failure (the
    client's ``acked`` is the highest heard: a missing one would not show there)."""
    for frame, at in zip(w.frames, w.heard_at, strict=True):
        if frame["type"] == "doc.ack" and frame["doc_id"] == typing.doc_id:
            if frame["version"] in typing.acked_at:
                typing.acks_repeated += 1
            else:
                typing.acked_at[frame["version"]] = at
    missing = sorted(set(typing.sent_at) - set(typing.acked_at))
    if missing:
        scenario.fail(
            f"trial {typing.number}: {typing.doc_id}: {len(missing)} edit(s) never "
            f"acknowledged on their own, e.g. versions {missing[:5]}"
        )


async def reopened(scenario: Scenario, trial: Trial, typing: Typing, doc: LiveDocument) -> None:
    """The document on a new socket: the writer's text and version, and its live set."""
    async with writer(scenario.session, scenario.gateway.base, scenario.token) as w2:
        again = await w2.reopen(doc.doc_id)
        await w2.settled(timeout=15)
    typing.kept = sum(1 for v in typing.acked_at if again.text.startswith(typing.text_at[v]))
    typing.applied_twice = max(0, again.version - doc.version)
    prefix = f"trial {trial.number}: {doc.doc_id} reopened"
    if (again.text, again.version) != (doc.text, doc.version):
        scenario.fail(
            f"{prefix}: version {again.version}, {len(again.text)} chars; the writer's: "
            f"version {doc.version}, {len(doc.text)} chars"
        )
    try:
        check_marks(again)
    except AssertionError as exc:
        scenario.fail(f"{prefix}: its marks: {exc}")
    held = {i: m.event["quote"] for i, m in doc.marks.items()}
    live = {i: m.event["quote"] for i, m in again.marks.items()}
    if held != live:
        scenario.fail(f"{prefix}: live set {live}, the writer holds {held}")


def before_first_snapshot(typings: list[Typing], snapshots: TopicLog) -> int:
    """The kills that came before the killed owner committed a snapshot of the document
    (its new owner then folded the creation itself again). A committed snapshot made
    before the kill can only be the killed owner's."""
    made: dict[str, int] = {}
    for record in snapshots.records:
        key = record.key.decode() if record.key else ""
        made[key] = min(made.get(key, record.timestamp), record.timestamp)
    return sum(
        1
        for t in typings
        if t.hit and t.doc_id is not None and made.get(t.doc_id, 2**63) > (t.killed_wall_ms or 0)
    )


def count(scenario: Scenario, typings: list[Typing], seed: int, snapshots: TopicLog) -> Counts:
    """The counts line, for edits: accepted = acknowledged edits, completed = those the
    reopened document has, lost = acknowledged and missing there, duplicated = edits
    applied more than once (a reopened version past the writer's)."""
    hit = [t for t in typings if t.hit]
    takeovers = [t.takeover_s for t in hit if t.takeover_s is not None]
    delays = [d for t in typings for d in t.delays.values()]
    late = [d for d in delays if d > LATE_S]
    spread = f"{min(takeovers):.1f}..{max(takeovers):.1f}s" if takeovers else "none"
    sent = sum(len(t.sent_at) for t in typings)
    env = scenario.stack.env
    details = [
        f"owners_killed={len(hit)}/{TRIALS} "
        f"before_first_snapshot={before_first_snapshot(typings, snapshots)} edits_sent={sent} "
        f"acked={sum(len(t.acked_at) for t in typings)} "
        f"acks_repeated={sum(t.acks_repeated for t in typings)} keys_per_s={KEYS_PER_S}",
        f"kill_to_takeover={spread} late_acks={len(late)} (over {LATE_S:g}s) "
        f"max_ack_delay={max(delays, default=0):.2f}s "
        f"median_ack_delay={statistics.median(delays) if delays else 0:.3f}s",
        f"session_timeout_ms={env['AMPLIFY_KAFKA_SESSION_TIMEOUT_MS']} seed={seed} "
        f"elapsed={scenario.elapsed:.1f}s",
        *summarize(scenario.failures),
    ]
    return report(
        Counts(
            scenario.name,
            TRIALS,
            accepted=sum(len(t.acked_at) for t in typings),
            completed=sum(t.kept for t in typings),
            lost=sum(t.lost for t in typings),
            duplicated=sum(t.applied_twice for t in typings),
            details=details,
        )
    )
