"""Group commit: items that arrive while a batch runs go together in the next one."""

from __future__ import annotations

import asyncio

import pytest

from amplify_stream.store.batches import Batched


async def test_items_arriving_during_a_run_go_in_the_next_batch() -> None:
    runs: list[list[int]] = []
    release = asyncio.Event()

    async def run(items: list[int]) -> list[int | Exception]:
        runs.append(items)
        await release.wait()
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]

    batched: Batched[int, int] = Batched(run)
    first = asyncio.ensure_future(batched(0))
    await asyncio.sleep(0)  # the first batch runs, holding [0]
    rest = [asyncio.ensure_future(batched(i)) for i in (1, 2, 3)]
    await asyncio.sleep(0)
    release.set()
    assert await first == 0
    results = await asyncio.gather(*rest, return_exceptions=True)
    assert runs == [[0], [1, 2, 3]]
    assert results[1] == 20
    assert isinstance(results[0], ValueError) and isinstance(results[2], ValueError)


async def test_a_failed_run_fails_its_batch_only() -> None:
    calls = 0

    async def run(items: list[str]) -> list[str | Exception]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("down")
        return items

    batched: Batched[str, str] = Batched(run)
    with pytest.raises(OSError):
        await batched("a")
    assert await batched("b") == "b"


async def test_a_caller_that_gives_up_before_its_batch_is_not_run() -> None:
    seen: list[str] = []
    release = asyncio.Event()

    async def run(items: list[str]) -> list[str | Exception]:
        seen.extend(items)
        await release.wait()
        return items

    batched: Batched[str, str] = Batched(run)
    first = asyncio.ensure_future(batched("first"))
    await asyncio.sleep(0)
    gone = asyncio.ensure_future(batched("gone"))
    kept = asyncio.ensure_future(batched("kept"))
    await asyncio.sleep(0)
    gone.cancel()
    release.set()
    assert (await first, await kept) == ("first", "kept")
    assert seen == ["first", "kept"]
