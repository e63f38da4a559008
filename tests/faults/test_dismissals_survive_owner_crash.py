"""The writer's say through a document owner killed (SIGKILL) mid-editing
(docs/protocol.md section 6, "The writer's say": what the writer decides "follows them
... through edits, passes, owner crashes, restarts and a reopen"). Real processes: a
gateway and two ``worker documents`` on the real broker.

A writer opens a document that draws many suggestions from the local analyzer and
dismisses three of them (found by the first pass); makes edits with passes between (random
words in and out, new sentences, never inside a dismissed sentence: a dismissed finding is
its rule, quote and sentence, so an edit there makes a new finding); waits for a
checkpoint to hold all that; adds a paragraph, dismisses two of what its pass found and
turns a rule off in the document by one of them; then, after a few more edits and before
the next checkpoint, the member owning the document's partition is killed. The writer goes
on editing (100 edits in all); the other member takes the partition over: the snapshot,
then the log after it, the later dismissals included.

The test proves the fault hit: the killed process is the one the group coordinator had
assigned the partition to (``owners.partition_owner``), after the kill the survivor holds
it (the same cross-check), and the kill landed after the last checkpoint: no committed
snapshot made before it holds the version the writer had reached, so the new owner folded
the last edits again and ran their passes anew. The later dismissals were in a committed
snapshot before the writer heard them (a dismissal rests on passes the log does not hold,
so its owner checkpoints it before answering: the snapshot topic shows it). And then:

- no dismissed finding (same rule, quote and sentence) in any ``doc.suggestion`` heard
  after its ``doc.ignores``, nor in the live set of the document reopened on a new socket;
  no suggestion of the rule turned off, likewise;
- every edit acknowledged, and the reopened document has the writer's text and version;
- the reopened document's ``doc.ignores`` lists every dismissal and the rule;
- no ``error`` at all.
"""

from __future__ import annotations

import json
import random
import re
import time
from dataclasses import dataclass, field, replace

import pytest

from amplify_stream.client.live import Frame
from amplify_stream.documents.ignores import sentence_around
from amplify_stream.text.edits import Change, code_point_index, utf16_length
from tests.e2e.conftest import Proc
from tests.faults.owners import document_owner, partition_owner
from tests.faults.report import Counts, report, summarize
from tests.faults.scenario import Scenario, Trial, eventually, rng_for
from tests.faults.test_document_owner_crash import Typing, note_acks
from tests.faults.test_worker_crash import kill
from tests.faults.topics import TopicLog
from tests.live_documents import Writer, check_marks, writer

ROLE = "documents"
# A pass 100 ms after the last edit (the edits come fast); a checkpoint every 3 s, so the
# kill lands after the later dismissals and the edits after them, before the next periodic
# checkpoint (a few hundred milliseconds of work after the checkpoint the test waits for;
# the snapshot topic says whether it did).
ENV = {"AMPLIFY_DOC_IDLE_MS": "100", "AMPLIFY_DOC_SNAPSHOT_MS": "3000"}
TEXT = (
    "Mara walked to the harbour at dusk. The boat was very big and the sea was calm. "
    "Tom was very angry at the gulls.\n"
    '"Come here," Tom said softly. "Not yet," Mara answered quietly. Maura waited by the rail.\n'
    "The storm was very loud that night. Maura was very tired, and Mara was very sad. "
    "The lamp was lit by someone.\n"
    '"Stay close," Tom whispered nervously. The waves were high. Mara felt very cold.\n'
    "In the morning the harbour was very quiet. Tom saw that the nets were torn."
)
PARAGRAPH = '\nThe cellar was very dark. Tom was very afraid of it. "Go," Mara said sharply.'
# (rule, quote) of the findings dismissed: of the first pass, then of the paragraph's.
FIRST = [
    ("plot.intensifier", "very big"),
    ("dialogue.adverb_tag", "said softly"),
    ("character.lookalike_names", "Maura"),
]
LATER = [("plot.intensifier", "very dark"), ("dialogue.adverb_tag", "said sharply")]
# Turned off in the document by the suggestion's id (the contract's "the rule of id").
RULE_OFF = ("character.telling", "was very afraid")
EDITS = 100
EDITS_BEFORE_CHECKPOINT = 40
EDITS_BEFORE_KILL = 8  # after the later dismissals
SETTLE_EVERY = (3, 8)  # edits between passes the writer waits for
TAKEOVER_WITHIN_S = 20
TRIAL_TIMEOUT_S = 90

# What the random edits put in: words that make findings of every kind, the dismissed
# rules' and the one turned off too (never "Maura": the dismissed look-alike stays put).
WORDS = ("very", "old", "grey", "slowly", "really", "quite", "Tom", "Mara", "salt", "cold")
SENTENCES = (
    "Tom was very {feeling}.",
    "The {thing} was very {size}.",
    '"Wait," Mara said {how}.',
    "Mara saw the {thing}.",
    "The {thing} was broken by someone.",
)
FILL = {
    "feeling": ("angry", "sad", "tired", "afraid", "happy"),
    "size": ("big", "loud", "cold", "small", "dark"),
    "how": ("softly", "quietly", "sharply", "slowly"),
    "thing": ("rope", "lamp", "door", "net", "mast"),
}
_WORD_START = re.compile(r"(?<!\S)[A-Za-z]")
_WHOLE_WORD = re.compile(r"(?<!\S)[A-Za-z]+ ")


def collapsed(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True)
class Dismissed:
    """A finding the writer said no to: what makes it "the same one" (rule, quote, the
    sentence it sits in), where its quote starts in that sentence, and when it was said
    (the index in the writer's frames of the ``doc.ignores`` answering it)."""

    id: str
    rule: str
    quote: str
    sentence: str
    at: int
    answered: int

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.rule, self.quote, collapsed(self.sentence))


@dataclass
class Say:
    """The run: its edits (``Typing``), what was dismissed, and what the fault did."""

    typing: Typing = field(default_factory=lambda: Typing(0))
    dismissed: list[Dismissed] = field(default_factory=list)
    rule_off_answered: int | None = None  # the frame index of its doc.ignores
    new_owner: Proc | None = None
    # The snapshots committed before the kill: did they hold the later dismissals (made
    # durable before heard), and not the version the writer reached (the kill came first)?
    dismissals_durable: bool = False
    before_checkpoint: bool = False
    # What contradicted the writer's say, a line each.
    reappeared: list[str] = field(default_factory=list)
    rule_off_heard: list[str] = field(default_factory=list)
    suggestions_heard: int = 0
    final_live: int = 0
    # The decisions (a dismissal's id, or RULE_OFF's rule) contradicted by something heard,
    # and those the reopened document's doc.ignores lists.
    contradicted: set[str] = field(default_factory=set)
    listed: set[str] = field(default_factory=set)

    @property
    def decisions(self) -> list[str]:
        return [d.id for d in self.dismissed] + [RULE_OFF[0]] * (self.rule_off_answered is not None)

    @property
    def held(self) -> int:
        return sum(1 for d in self.decisions if d in self.listed and d not in self.contradicted)

    @property
    def hit(self) -> bool:
        t = self.typing
        return (
            t.owner is not None
            and t.owner.process.returncode is not None
            and self.new_owner is not None
            and t.takeover_s is not None
        )


@pytest.mark.kafka
@pytest.mark.timeout(150)
async def test_dismissals_survive_the_owner_killed_mid_editing(scenario: Scenario) -> None:
    await scenario.start(workers=[ROLE, ROLE], read_outcomes=False, **ENV)
    snapshots = await scenario.read_topic("document-snapshots")
    rng, seed = rng_for(scenario.name)
    run = Say()
    trial = scenario.trial(0, TRIAL_TIMEOUT_S)
    async with trial:
        await say_edit_kill(scenario, trial, run, snapshots, rng)
    counts = count(scenario, run, seed)
    assert run.hit, "the owner was not killed, or no other member took the partition"
    assert run.before_checkpoint, "a checkpoint held the writer's last version before the kill"
    assert run.dismissals_durable, "the later dismissals were heard before a checkpoint held them"
    assert run.reappeared == [], run.reappeared[:5]
    assert run.rule_off_heard == [], run.rule_off_heard[:5]
    assert (counts.accepted, counts.lost) == (len(FIRST) + len(LATER) + 1, 0)
    assert (run.typing.lost, run.typing.applied_twice) == (0, 0)
    assert not scenario.failures, "\n".join(scenario.failures[:20])


async def say_edit_kill(
    scenario: Scenario, trial: Trial, run: Say, snapshots: TopicLog, rng: random.Random
) -> None:
    stack, typing = scenario.stack, run.typing
    group, topic = f"{stack.env['AMPLIFY_TOPIC_PREFIX']}.{ROLE}", stack.topic(ROLE)
    members = scenario.members(ROLE)
    async with writer(scenario.session, scenario.gateway.base, scenario.token) as w:
        doc = await w.open(TEXT, title="Harbour")
        typing.doc_id, typing.text_at[0] = doc.doc_id, doc.text
        owner, typing.partition = await document_owner(
            members, stack.bootstrap, group, topic, doc.doc_id
        )
        if owner is None:
            trial.missed(f"the owner of {doc.doc_id} is not certain")
        await w.settled()
        await dismiss(w, run, FIRST)
        await edit(w, run, rng, EDITS_BEFORE_CHECKPOINT)
        await w.settled()
        if not await eventually(lambda: snapshot_at(snapshots, doc.doc_id, doc.version), 10, 0.02):
            trial.missed(f"no checkpoint of {doc.doc_id} at version {doc.version}")
        # Within the checkpoint's interval from here: a paragraph, its pass, the later
        # dismissals and the rule off, a few edits, the kill.
        end = utf16_length(doc.text)
        await send_edit(w, typing, Change(end, end, PARAGRAPH))
        await w.settled()
        await dismiss(w, run, LATER, rule_off=RULE_OFF)
        await edit(w, run, rng, EDITS_BEFORE_KILL, settle_last=False)
        typing.version_at_kill = doc.version
        typing.killed_wall_ms = int(time.time() * 1000)
        typing.killed_at = await kill(owner)
        typing.owner = owner
        scenario.log(
            f"{doc.doc_id} (partition {typing.partition}): killed {owner.name} "
            f"at version {doc.version}"
        )
        # The writer goes on; the takeover is the first ack of an edit sent after the kill.
        left = EDITS - doc.version
        await edit(w, run, rng, 1, settle_last=False)
        await w.until(
            lambda: doc.acked > typing.version_at_kill, "an ack after the kill", TAKEOVER_WITHIN_S
        )
        typing.takeover_s = time.monotonic() - typing.killed_at
        survivors = [m for m in members if m is not owner]
        run.new_owner = await partition_owner(
            survivors, stack.bootstrap, group, (topic, typing.partition), timeout=20
        )
        await edit(w, run, rng, left - 1)
        await w.settled(timeout=30)
        scenario.log(
            f"{doc.version} edits; acks after the kill within {typing.takeover_s:.1f}s; "
            f"partition now {run.new_owner.name if run.new_owner else 'not certain'}"
        )
        note_acks(scenario, w, typing)
        for error in w.of("error"):
            scenario.fail(f"{doc.doc_id}: error {error}")
        check_heard(run, w.frames, typing.text_at)
        # Read now: the snapshot topic is read behind the writer, by a few hundred ms.
        later = {d.id for d in run.dismissed[len(FIRST) :]}
        held, version = checkpointed(snapshots, doc.doc_id, typing.killed_wall_ms or 0)
        run.dismissals_durable = later <= held
        run.before_checkpoint = version < (typing.version_at_kill or 0)
        try:
            check_marks(doc)
        except AssertionError as exc:
            scenario.fail(f"{doc.doc_id}: the writer's marks: {exc}")
    await reopened(scenario, run, doc.text, doc.version)


# ------------------------------------------------------------ the writer's say


async def dismiss(
    w: Writer,
    run: Say,
    targets: list[tuple[str, str]],
    rule_off: tuple[str, str] | None = None,
) -> None:
    """``doc.dismiss`` of each live (rule, quote) of ``targets`` (scope ``suggestion``),
    and ``rule_off``'s rule in the document by its suggestion's id, all at once; back once
    each ``doc.ignores`` is heard."""
    doc = w.doc
    assert doc is not None
    asked: dict[str, Dismissed | None] = {}  # by request id; None: the rule off
    for rule, quote in [*targets, *([rule_off] if rule_off else [])]:
        # The latest in the text: the paragraph's, when the edits put in the same words.
        mark = max(
            (m for m in doc.marks.values() if (m.event["rule"], m.event["quote"]) == (rule, quote)),
            key=lambda m: m.start_utf16,
        )
        off = (rule, quote) == rule_off
        request_id = f"say-{mark.id}"
        start = code_point_index(doc.text, mark.start_utf16)
        sentence, at = sentence_at(doc.text, start, start + len(quote))
        asked[request_id] = None if off else Dismissed(mark.id, rule, quote, sentence, at, -1)
        scope = "document" if off else "suggestion"
        frame = {"type": "doc.dismiss", "doc_id": doc.doc_id, "id": mark.id, "scope": scope}
        await w.send(frame | {"request_id": request_id})

    def answer(request_id: str) -> list[Frame]:
        return w.of("doc.ignores", request_id=request_id) or w.of("error", request_id=request_id)

    await w.until(lambda: all(answer(r) for r in asked), "the dismissals' doc.ignores")
    for request_id, dismissed in asked.items():
        (said,) = answer(request_id)
        assert said["type"] == "doc.ignores", said
        index = next(i for i, f in enumerate(w.frames) if f is said)
        if dismissed is None:
            assert rule_off is not None and rule_off[0] in said["rules_off"], said
            run.rule_off_answered = index
        else:
            assert dismissed.id in {d["id"] for d in said["dismissed"]}, said
            run.dismissed.append(replace(dismissed, answered=index))


def sentence_at(text: str, start: int, end: int) -> tuple[str, int]:
    """The sentence holding code points ``[start, end)`` (as the owner reads it), and
    where ``start`` lies in it."""
    sentence = sentence_around(text, start, end)
    first = text.find(sentence)
    while first >= 0 and not first <= start <= end <= first + len(sentence):
        first = text.find(sentence, first + 1)
    assert first >= 0, (sentence, start)
    return sentence, start - first


def intact(text: str, dismissed: list[Dismissed]) -> bool:
    """Each dismissed finding's sentence is in ``text`` once, whole, with its quote."""
    for d in dismissed:
        if text.count(d.sentence) != 1:
            return False
        start = text.index(d.sentence) + d.at
        if collapsed(sentence_around(text, start, start + len(d.quote))) != collapsed(d.sentence):
            return False
    return True


# ------------------------------------------------------------ the edits


async def edit(
    w: Writer, run: Say, rng: random.Random, n: int, *, settle_last: bool = True
) -> None:
    """``n`` random edits, a pass waited for every few (and after the last, unless
    ``settle_last`` is false)."""
    doc = w.doc
    assert doc is not None
    until_settle = rng.randint(*SETTLE_EVERY)
    for i in range(n):
        await send_edit(w, run.typing, random_edit(rng, doc.text, run.dismissed))
        until_settle -= 1
        if until_settle == 0 or (settle_last and i == n - 1):
            await w.settled(timeout=30)
            until_settle = rng.randint(*SETTLE_EVERY)


async def send_edit(w: Writer, typing: Typing, change: Change) -> None:
    sent = time.monotonic()
    version = await w.edit(change)
    assert w.doc is not None
    typing.sent_at[version] = sent
    typing.text_at[version] = w.doc.text


def random_edit(rng: random.Random, text: str, dismissed: list[Dismissed]) -> Change:
    """A word in or out, or a new sentence (at a line's end, or as a line of its own),
    never inside a dismissed finding's sentence."""
    for _ in range(500):
        start, end, new = _candidate(rng, text)
        if intact(text[:start] + new + text[end:], dismissed):
            return Change(utf16_length(text[:start]), utf16_length(text[:end]), new)
    raise AssertionError("no edit away from the dismissed sentences")


def _candidate(rng: random.Random, text: str) -> tuple[int, int, str]:
    kind = rng.random()
    if kind < 0.4:
        at = rng.choice([m.start() for m in _WORD_START.finditer(text)])
        return at, at, rng.choice(WORDS) + " "
    words = list(_WHOLE_WORD.finditer(text))
    if kind < 0.7 and words:
        gone = rng.choice(words)
        return gone.start(), gone.end(), ""
    ends = [i for i, c in enumerate(text) if c == "\n"] + [len(text)]
    at = rng.choice(ends)
    sentence = rng.choice(SENTENCES).format(**{k: rng.choice(v) for k, v in FILL.items()})
    return at, at, rng.choice((" ", "\n")) + sentence


# ------------------------------------------------------------ checkpoints


def _snapshots_of(snapshots: TopicLog, doc_id: str) -> list[tuple[int, dict]]:
    return [
        (r.timestamp, json.loads(r.value))
        for r in list(snapshots.records)
        if r.key == doc_id.encode() and r.value
    ]


def snapshot_at(snapshots: TopicLog, doc_id: str, version: int) -> bool:
    """A committed snapshot of the document at ``version``."""
    return any(s["version"] == version for _, s in _snapshots_of(snapshots, doc_id))


def checkpointed(snapshots: TopicLog, doc_id: str, before_ms: int) -> tuple[set[str], int]:
    """The dismissals held, and the highest version, of the committed snapshots made before
    ``before_ms`` (before the kill: the killed owner's)."""
    held: set[str] = set()
    version = -1
    for at, s in _snapshots_of(snapshots, doc_id):
        if at <= before_ms:
            dismissed = ((s.get("ignores") or {}).get("dismissed") or {}).values()
            held |= {d["id"] for d in dismissed}
            version = max(version, s["version"])
    return held, version


# ------------------------------------------------------------ the checks


def check_heard(
    run: Say, frames: list[Frame], text_at: dict[int, str], *, reopen: bool = False
) -> None:
    """Every ``doc.suggestion`` of ``frames``: none of a dismissed finding after its
    ``doc.ignores``, none of the rule turned off after its own (on a socket opened after
    them, none at all)."""
    keys = {d.key: d for d in run.dismissed}
    off = -1 if reopen else run.rule_off_answered
    for index, frame in enumerate(frames):
        if frame["type"] != "doc.suggestion":
            continue
        run.suggestions_heard += 1
        sentence = sentence_around(text_at[frame["version"]], frame["start"], frame["end"])
        said = (frame["rule"], frame["quote"], collapsed(sentence))
        where = f"{'reopened: ' if reopen else ''}{frame['id']} at v{frame['version']}"
        if (d := keys.get(said)) is not None and (reopen or index > d.answered):
            run.reappeared.append(f"{where} {said} (dismissed as {d.id})")
            run.contradicted.add(d.id)
        if frame["rule"] == RULE_OFF[0] and off is not None and index > off:
            run.rule_off_heard.append(f"{where} {frame['quote']!r}")
            run.contradicted.add(RULE_OFF[0])


async def reopened(scenario: Scenario, run: Say, text: str, version: int) -> None:
    """The document on a new socket: the writer's text and version, a live set without
    what the writer said no to, and a ``doc.ignores`` that lists it."""
    typing = run.typing
    assert typing.doc_id is not None
    async with writer(scenario.session, scenario.gateway.base, scenario.token) as w2:
        again = await w2.reopen(typing.doc_id)
        await w2.settled(timeout=15)
        check_heard(run, w2.frames, {again.version: again.text}, reopen=True)
        run.final_live = len(again.marks)
        ignores = w2.of("doc.ignores")
        for error in w2.of("error"):
            scenario.fail(f"reopened: error {error}")
    if (again.text, again.version) != (text, version):
        scenario.fail(
            f"reopened: version {again.version}, {len(again.text)} chars; the writer's: "
            f"version {version}, {len(text)} chars"
        )
    if typing.text_at.get(again.version) == again.text:
        typing.kept = sum(1 for v in typing.acked_at if v <= again.version)
    typing.applied_twice = max(0, again.version - version)
    said = ignores[-1] if ignores else {}
    listed = {d["id"] for d in said.get("dismissed", [])}
    run.listed = listed | set(said.get("rules_off", []))
    if missing := [f"{d.id} {d.quote!r}" for d in run.dismissed if d.id not in listed]:
        scenario.fail(f"reopened: doc.ignores lacks the dismissals {missing}")
    if RULE_OFF[0] not in said.get("rules_off", []):
        scenario.fail(f"reopened: doc.ignores lacks the rule off {RULE_OFF[0]}: {said}")


def count(scenario: Scenario, run: Say, seed: int) -> Counts:
    """The counts line, for the writer's decisions (the dismissals and the rule off):
    accepted = those the owner answered with doc.ignores, completed = those the reopened
    document lists and nothing heard contradicted, lost = the rest; duplicated = edits
    applied more than once (a reopened version past the writer's). Then the edits'."""
    t = run.typing
    env = scenario.stack.env
    takeover = "none" if t.takeover_s is None else f"{t.takeover_s:.1f}s"
    details = [
        f"owner_killed={int(run.hit)} before_checkpoint={int(run.before_checkpoint)} "
        f"dismissals_durable={int(run.dismissals_durable)} "
        f"kill_to_takeover={takeover} version_at_kill={t.version_at_kill}",
        f"edits_sent={len(t.sent_at)} acked={len(t.acked_at)} kept={t.kept} lost={t.lost} "
        f"acks_repeated={t.acks_repeated}",
        f"dismissed={len(run.dismissed)} rule_off={RULE_OFF[0]} "
        f"suggestions_heard={run.suggestions_heard} reappeared={len(run.reappeared)} "
        f"rule_off_heard={len(run.rule_off_heard)} final_live={run.final_live}",
        f"session_timeout_ms={env['AMPLIFY_KAFKA_SESSION_TIMEOUT_MS']} "
        f"doc_snapshot_ms={env['AMPLIFY_DOC_SNAPSHOT_MS']} seed={seed} "
        f"elapsed={scenario.elapsed:.1f}s",
        *[f"reappeared: {r}" for r in run.reappeared[:5]],
        *[f"rule off heard: {r}" for r in run.rule_off_heard[:5]],
        *summarize(scenario.failures),
    ]
    decisions = len(run.decisions)
    return report(
        Counts(
            scenario.name,
            1,
            accepted=decisions,
            completed=run.held,
            lost=decisions - run.held,
            duplicated=t.applied_twice,
            details=details,
        )
    )
