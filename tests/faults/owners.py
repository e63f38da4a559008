"""Who runs a story: the member of a worker group that logged starting its attempt. Who
owns a partition (a live document's, say): the member the group coordinator assigned it
to, as that member logged it."""

from __future__ import annotations

import asyncio
import re
import time

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from amplify_stream.bus.partitioner import partition_for_key
from tests.e2e.conftest import Proc
from tests.faults.client import StoryView

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


# ------------------------------------------------------------ a partition's owner

# What GroupMember._on_assigned and _on_revoked log: the partitions as (topic, partition) pairs.
_PAIR = re.compile(r"\('([^']+)', (\d+)\)")
_ASSIGNED = "assigned ["
_REVOKED = "revoked ["


def held(proc: Proc) -> frozenset[tuple[str, int]] | None:
    """The partitions the process says it holds now: its latest ``assigned`` line, unless
    a ``revoked`` came after it (None then, and before its first assignment: it is in a
    rebalance). Rebalances are eager: each one revokes everything and assigns anew."""
    for line in reversed(proc.output):
        if _REVOKED in line:
            return None
        if _ASSIGNED in line:
            pairs = line.split(_ASSIGNED, 1)[1]
            return frozenset((t, int(p)) for t, p in _PAIR.findall("[" + pairs))
    return None


async def group_assignment(bootstrap: str, group: str) -> list[frozenset[tuple[str, int]]] | None:
    """What the group coordinator says each member of ``group`` holds, when the group is
    ``Stable`` (None while it rebalances or is empty)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    # DescribeGroups v0+: (error_code, group_id, state, protocol_type, protocol, members).
    error, _, state, _, _, members = response.groups[0][:6]
    if error or state != "Stable" or not members:
        return None
    found = []
    for member in members:
        assignment = ConsumerProtocolMemberAssignment.decode(member[-1])
        found.append(frozenset((t, p) for t, ps in assignment.assignment for p in ps))
    return found


async def partition_owner(
    procs: list[Proc], bootstrap: str, group: str, tp: tuple[str, int], timeout: float = 30
) -> Proc | None:
    """The member of ``group`` holding ``tp``, certainly: the group is stable, every live
    process in ``procs`` logged its part of the coordinator's assignment (the same sets,
    member for member), and one of them holds ``tp``. None if that does not come about
    within ``timeout`` (a rebalance that does not end, a member that is not accounted for)."""
    deadline = time.monotonic() + timeout
    while True:
        live = [p for p in procs if p.process.returncode is None]
        logged = [held(p) for p in live]
        if all(h is not None for h in logged):
            broker = await group_assignment(bootstrap, group)
            if broker is not None and sorted(map(sorted, broker)) == sorted(
                sorted(h) for h in logged if h is not None
            ):
                owners = [p for p, h in zip(live, logged, strict=True) if h and tp in h]
                if len(owners) == 1:
                    return owners[0]
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(0.1)


async def partition_count(bootstrap: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return len(described["partitions"])


async def document_owner(
    procs: list[Proc], bootstrap: str, group: str, topic: str, doc_id: str, timeout: float = 30
) -> tuple[Proc | None, int]:
    """The member of the documents ``group`` owning ``doc_id`` (see ``partition_owner``),
    and the document's partition of the edit log ``topic``: where the bus puts its key."""
    partition = partition_for_key(doc_id, await partition_count(bootstrap, topic))
    return await partition_owner(procs, bootstrap, group, (topic, partition), timeout), partition
