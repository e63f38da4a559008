"""A worker's hold on one input partition, from its assignment to its revocation.

Two guards keep a worker that lost a partition (a zombie: frozen past its session
timeout, or cut off from the group) from writing anything for it:

- the lease (``holds``/``hold``): every write for the partition's work (stream, segments,
  outcomes) first checks that the group surely still counts this process as a member
  (``bus.membership``) and has not revoked the partition. A process that wakes from a
  freeze finds its lease run out and waits for the group's answer: a renewal (it was
  never gone) or a revocation (its work there stops, raising ``PartitionLost``).
- the fence: outcomes go through a transactional producer whose id belongs to the
  partition (``<group>.<topic>.<partition>``). Whoever is assigned the partition starts
  it, which fences every older producer of that id, before it reads any story's history.
  So even a zombie whose lease were wrong could not commit an outcome the new owner does
  not see; its transaction fails ``BusFenced``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Literal

from amplify_stream.bus import is_bus_error
from amplify_stream.bus.base import TopicPartition
from amplify_stream.bus.membership import Membership
from amplify_stream.retry import retry_with_backoff
from producers.lease import PartitionLost
from producers.outcomes import OutcomePublisher

log = logging.getLogger(__name__)

FENCE_RETRY_INITIAL_S = 0.5
FENCE_RETRY_MAX_S = 5.0


def transactional_id(group_id: str, tp: TopicPartition) -> str:
    """The outcome producer's id for work from ``tp``: the same in every member."""
    return f"{group_id}.{tp.topic}.{tp.partition}"


OwnershipEvent = Literal["held", "fenced", "handed_over"]


class Ownership:
    def __init__(
        self,
        tp: TopicPartition,
        membership: Membership,
        observe: Callable[[OwnershipEvent], None] = lambda event: None,
    ) -> None:
        self.tp = tp
        self._membership = membership
        # Counts what happened to the hold (``amplify_partition_ownership_events``).
        self.observe = observe
        self.lost = False
        self._lost = asyncio.Event()
        self._holding = False  # writes are waiting for the group (logged once a spell)
        self.outcomes: OutcomePublisher | None = None
        self._fencing: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ the lease

    def holds(self) -> bool:
        return not self.lost and self._membership.certain()

    async def hold(self) -> None:
        while True:
            if self.lost:
                raise PartitionLost(f"{self.tp.topic}[{self.tp.partition}] is not ours any more")
            if self._membership.certain():
                if self._holding:
                    self._holding = False
                    log.info("membership confirmed: writes for %s go on", _name(self.tp))
                return
            if not self._holding:
                self._holding = True
                self.observe("held")
                log.warning(
                    "membership unconfirmed for %.1f s: writes for %s held until the group "
                    "confirms this member or revokes the partition",
                    -self._membership.expires_in(),
                    _name(self.tp),
                )
            await self._next_word()

    async def after_fence(self) -> None:
        self.observe("fenced")
        await self._next_word()
        await self.hold()

    async def _next_word(self) -> None:
        """Until the group renews this member's lease or the partition is revoked."""
        renewal = asyncio.ensure_future(self._membership.renewal())
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            await asyncio.wait({renewal, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            renewal.cancel()
            lost.cancel()

    def lose(self) -> None:
        """Revoked: from now on every ``hold`` raises ``PartitionLost``."""
        self.lost = True
        self._lost.set()

    # ------------------------------------------------------------ the fence

    def fence(self, outcomes: OutcomePublisher) -> None:
        """Start ``outcomes`` (the partition's transactional producer) in the background,
        retrying while the bus is away: work from the partition awaits ``fenced`` first.
        Not in the assignment callback itself, which delays the member's first heartbeat."""
        self.outcomes = outcomes
        self._fencing = asyncio.create_task(self._fence(outcomes), name=f"fence:{_name(self.tp)}")

    async def _fence(self, outcomes: OutcomePublisher) -> None:
        """Until started: the partition's work waits for it, so it never gives up (short of
        the partition going, which ``outcomes.start`` raises as ``PartitionLost``)."""

        async def not_started(exc: Exception, delay: float) -> None:
            if is_bus_error(exc):
                log.warning("outcome producer of %s not started, retrying: %r", _name(self.tp), exc)
            else:
                log.exception("outcome producer of %s failed to start, retrying", _name(self.tp))
            with contextlib.suppress(Exception):
                await outcomes.stop()

        await retry_with_backoff(
            outcomes.start,
            retry_on=lambda exc: not isinstance(exc, PartitionLost),
            first_delay_s=FENCE_RETRY_INITIAL_S,
            max_delay_s=FENCE_RETRY_MAX_S,
            on_retry=not_started,
        )

    async def fenced(self) -> bool:
        """Once every older producer of the partition's transactional id is fenced (at
        once when the worker writes no outcomes): True; False when the partition was lost
        first."""
        if self._fencing is not None:
            # wait(), not await: the fence ending (cancelled by a revocation) is an answer.
            # Asked before every record: once it is done, no waiting is set up at all.
            if not self._fencing.done():
                await asyncio.wait({self._fencing})
            if self._fencing.cancelled() or self._fencing.exception() is not None:
                return False
        return not self.lost

    async def close(self) -> None:
        """After revocation: stop fencing and the producer (its open transaction, if any,
        is aborted by the coordinator or by the next owner's fence)."""
        self.lose()
        if self._fencing is not None:
            self._fencing.cancel()
            await asyncio.wait({self._fencing})
        if self.outcomes is not None:
            with contextlib.suppress(Exception):
                await self.outcomes.stop()


def _name(tp: TopicPartition) -> str:
    return f"{tp.topic}[{tp.partition}]"
