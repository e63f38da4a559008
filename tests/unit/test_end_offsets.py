"""Recent end offsets: one read shared by concurrent callers, reused while fresh."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest

from amplify_stream.bus.base import Bus, BusUnavailable
from amplify_stream.gateway.end_offsets import RecentEndOffsets


class CountingBus:
    """The one method RecentEndOffsets uses: end offsets that grow with every read."""

    def __init__(self) -> None:
        self.reads = 0
        self.fail = False

    async def end_offsets(self, topic: str) -> dict[int, int]:
        self.reads += 1
        await asyncio.sleep(0.01)
        if self.fail:
            raise BusUnavailable("down")
        return {0: self.reads}


def recent(bus: CountingBus, max_age_s: float) -> RecentEndOffsets:
    return RecentEndOffsets(cast(Bus, bus), "t", max_age_s=max_age_s, timeout_s=1.0)


async def test_concurrent_callers_share_one_read_reused_while_fresh() -> None:
    bus = CountingBus()
    ends = recent(bus, max_age_s=0.2)
    assert await asyncio.gather(*(ends.get() for _ in range(20))) == [{0: 1}] * 20
    assert await ends.get() == {0: 1} and bus.reads == 1
    await asyncio.sleep(0.25)
    await ends.get()
    await asyncio.sleep(0.02)
    assert await ends.get() == {0: 2} and bus.reads == 2


async def test_past_its_age_a_reading_is_not_given_out_callers_wait_for_the_next() -> None:
    bus = CountingBus()
    ends = recent(bus, max_age_s=0.05)
    assert await ends.get() == {0: 1}
    await asyncio.sleep(0.06)
    assert await asyncio.gather(ends.get(), ends.get()) == [{0: 2}, {0: 2}]
    assert bus.reads == 2


async def test_a_failed_read_fails_its_callers_and_the_next_call_reads_again() -> None:
    bus = CountingBus()
    ends = recent(bus, max_age_s=10)
    bus.fail = True
    with pytest.raises(BusUnavailable):
        await ends.get()
    bus.fail = False
    assert await ends.get() == {0: 2}


async def test_while_the_bus_fails_every_caller_is_refused_none_gets_an_old_reading() -> None:
    bus = CountingBus()
    ends = recent(bus, max_age_s=0.05)
    assert await ends.get() == {0: 1}
    await asyncio.sleep(0.06)
    bus.fail = True
    for _ in range(3):
        with pytest.raises(BusUnavailable):
            await ends.get()
    bus.fail = False
    assert await ends.get() == {0: 5}


async def test_a_caller_that_gives_up_does_not_cancel_the_others_read() -> None:
    bus = CountingBus()
    ends = recent(bus, max_age_s=10)
    quitter = asyncio.ensure_future(ends.get())
    stayer = asyncio.ensure_future(ends.get())
    await asyncio.sleep(0)
    quitter.cancel()
    assert await stayer == {0: 1}
