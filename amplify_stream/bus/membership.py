"""How long a consumer group member can be sure it is still a member: its lease.

The group coordinator expels a member it has not heard from for the session timeout, and
only then gives the member's partitions to others. Every heartbeat (or join) the
coordinator accepted therefore proves the member is in the group until the moment it was
*sent* plus the session timeout, whatever happens to the member meanwhile: a process
frozen (SIGSTOP, a long pause, a suspended VM) or cut off from the coordinator wakes up
to a lease that has run out, and knows not to write before the group has confirmed it
again, or has revoked its partitions.

The clock is CLOCK_BOOTTIME where there is one (Linux): it counts the time a machine
sleeps, as the broker's clock does; CLOCK_MONOTONIC stops while it sleeps.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Coroutine
from typing import Any

# Of the session timeout, how much a renewal is trusted for: the rest covers the time
# from a check to the record reaching its partition leader.
LEASE_FRACTION = 0.8

_CLOCK = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)


def clock() -> float:
    """Seconds on the lease clock (only differences mean anything)."""
    return time.clock_gettime(_CLOCK)


class Membership:
    """The member's lease, renewed by the bus backend whenever the group confirms it."""

    def __init__(self, session_timeout_s: float) -> None:
        self._term = session_timeout_s * LEASE_FRACTION
        self._until = -math.inf
        self._renewed = asyncio.Event()

    def renew(self, sent_at: float) -> None:
        """The coordinator accepted a request of ours sent at ``sent_at`` (on ``clock``)."""
        self._until = max(self._until, sent_at + self._term)
        renewed, self._renewed = self._renewed, asyncio.Event()
        renewed.set()

    def end(self) -> None:
        """The member learned it is out of the group (or left it)."""
        self._until = -math.inf

    def certain(self) -> bool:
        """Whether the group surely still counts this process as a member now."""
        return clock() < self._until

    def expires_in(self) -> float:
        """Seconds of the lease left (negative: it ran out that long ago)."""
        return self._until - clock()

    def renewal(self) -> Coroutine[Any, Any, bool]:
        """Until the next renewal after this call (the coroutine is bound to it now)."""
        return self._renewed.wait()
