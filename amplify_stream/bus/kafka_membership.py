"""The lease of a Kafka group member (``bus.membership``), kept from what aiokafka does.

What aiokafka 0.14 gives, read in its source (``consumer/group_coordinator.py``):

- The rebalance listener. ``on_partitions_revoked`` runs before every JoinGroup, the
  first one included (with no partitions), and ``on_partitions_assigned`` after the
  SyncGroup that completes the join. The lease clock read as the revocation callback
  returns is earlier than the JoinGroup it precedes, so an assignment renews the lease
  from there.
- Heartbeats, in a task of the consumer's coordinator: each goes through
  ``GroupCoordinator._do_heartbeat()``, which returns True when the coordinator accepted
  it, ``REBALANCE_IN_PROGRESS`` included. That one does not renew the lease: once a
  rebalance has begun, a member that has not joined again within the rebalance timeout
  (aiokafka's default: the session timeout, from the rebalance's start) is dropped
  whatever it heartbeats; aiokafka then sets ``_rejoin_needed_fut``, and revokes at once.
  No public hook tells a heartbeat's outcome, so ``observe_heartbeats`` wraps that one
  method on the consumer's own coordinator (and reads that future), refusing to start on
  an aiokafka without them.

What it does not give:

- A "partitions lost" callback (Kafka's ``onPartitionsLost``). A member whose session
  expired (frozen, cut off) learns it from its next heartbeat (``UNKNOWN_MEMBER_ID`` or
  ``ILLEGAL_GENERATION``), then rejoins, calling ``on_partitions_revoked`` on the way;
  until then nothing stops it writing for partitions that are no longer its own. The
  lease is what does.
- Fencing by group generation (KIP-447): ``send_offsets_to_transaction`` takes the group
  id only, so the broker cannot refuse a zombie's transaction by its generation. The
  workers fence by transactional id instead, one per input partition
  (``consumers/ownership.py``).
"""

from __future__ import annotations

import asyncio
import inspect

import aiokafka
from aiokafka import AIOKafkaConsumer

from amplify_stream.bus.membership import Membership, clock

# aiokafka's JoinGroupRequest.UNKNOWN_MEMBER_ID: the member id after the coordinator said
# it does not know this member any more.
_NO_MEMBER_ID = ""


def observe_heartbeats(consumer: AIOKafkaConsumer, membership: Membership) -> None:
    """Renew ``membership`` from every heartbeat the coordinator accepts; end it when the
    coordinator says this member is gone. Call once the consumer has started."""
    coordinator = getattr(consumer, "_coordinator", None)
    heartbeat = getattr(coordinator, "_do_heartbeat", None)
    if (
        heartbeat is None
        or not inspect.iscoroutinefunction(heartbeat)
        or not isinstance(getattr(coordinator, "_rejoin_needed_fut", None), asyncio.Future)
    ):
        raise RuntimeError(
            f"aiokafka {aiokafka.__version__} has no GroupCoordinator._do_heartbeat (or "
            "_rejoin_needed_fut) to renew the group lease from; see "
            "amplify_stream/bus/kafka_membership.py"
        )

    async def renewing() -> bool:
        sent_at = clock()
        accepted: bool = await heartbeat()
        # Read after the answer: REBALANCE_IN_PROGRESS sets it (aiokafka replaces it with a
        # new future once the member has joined again).
        rebalancing = coordinator._rejoin_needed_fut.done()  # type: ignore[union-attr]
        if accepted and not rebalancing:
            membership.renew(sent_at)
        elif getattr(coordinator, "member_id", None) == _NO_MEMBER_ID:
            membership.end()
        return accepted

    coordinator._do_heartbeat = renewing  # type: ignore[union-attr]
