"""A cancel lands within a second, even while the model is slow: the client hears
``story.completed`` ``cancelled``, the model's stream is closed, and the outcome topic
says cancelled, once."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from tests.faults.scenario import FakeModel, Scenario, Trial, story_text
from tests.faults.stack import fake_gemini_record

TRIALS = 10
CANCEL_WITHIN_S = 1.0
# The fake's record may lag the cancel a little: the worker closes the connection after
# it has published story.completed.
STREAMS_CLOSED_WITHIN_S = 2.0


@pytest.mark.kafka
@pytest.mark.timeout(200)
async def test_cancel_lands_within_a_second(scenario: Scenario) -> None:
    # A slow model: the first token after 200 ms, then 10 a second.
    await scenario.start(workers=["enhancer", "narrator"], fake_model=FakeModel(200, 10))
    latencies: list[float] = []
    trials = scenario.trials(TRIALS, each_s=30, budget_s=120)
    for trial in trials:
        async with trial:
            await trial.submit(story_text(trial.number))
            await trial.read_until(lambda v: v.count("enhancement.delta") >= 1)
            if trial.view.completed is not None or trial.view.story_id is None:
                trial.missed(f"trial {trial.number}: the story ended before its first delta")
            latencies.append(await cancel(trial))
        if trial.done:
            status = (trial.view.completed or {}).get("status")
            scenario.log(
                f"trial {trial.number}: {status} {latencies[-1] * 1000:.0f} ms after cancel"
            )
            scenario.expect_status(trial.view, "cancelled")
            if latencies[-1] >= CANCEL_WITHIN_S:
                scenario.fail(
                    f"{trial.view.story_id}: cancelled after {latencies[-1]:.2f}s (limit 1 s)"
                )
            await model_stream_closed(scenario, trial)

    assert trials.budget is not None
    await scenario.settle(timeout=max(5.0, min(30.0, trials.budget.left)))
    for sid in scenario.accepted:
        statuses = [e.get("status") for e in scenario.outcomes.completions(sid)]
        if statuses and statuses[0] != "cancelled":
            scenario.fail(f"{sid}: story.completed on the outcome topic says {statuses}")
    spread = f"{min(latencies) * 1000:.0f}..{max(latencies) * 1000:.0f} ms" if latencies else "none"
    assert scenario.fake_base is not None
    record = await fake_gemini_record(scenario.session, scenario.fake_base)
    counts = scenario.count(
        TRIALS,
        f"cancel_to_completed={spread} fake_calls={record['requests']} "
        f"states={sorted({c['state'] for c in record['calls']})}",
    )
    assert counts.lost == 0
    assert counts.duplicated == 0
    assert not scenario.failures, "\n".join(scenario.failures[:20])


async def cancel(trial: Trial) -> float:
    """The fault: ``story.cancel``; the seconds until ``story.completed`` (within 10 s)."""
    assert trial.ws is not None
    asked = time.monotonic()
    await trial.ws.send_json({"type": "story.cancel", "story_id": trial.view.story_id})
    try:
        async with asyncio.timeout(10):
            await trial.read_to_end()
    except TimeoutError:
        trial.missed(f"{trial.view.story_id}: no story.completed 10 s after cancel")
    return time.monotonic() - asked


async def model_stream_closed(scenario: Scenario, trial: Trial) -> None:
    """The model call was given up: the fake saw its connection close."""
    sid, base = trial.view.story_id, scenario.fake_base
    assert base is not None
    try:
        record = await fake_gemini_record(scenario.session, base)
        deadline = time.monotonic() + STREAMS_CLOSED_WITHIN_S
        while record["open_streams"] and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            record = await fake_gemini_record(scenario.session, base)
        if record["open_streams"]:
            scenario.fail(
                f"{sid}: the fake still has {record['open_streams']} open stream(s) "
                f"{STREAMS_CLOSED_WITHIN_S} s after the cancel"
            )
        if record["open_calls"]:
            scenario.fail(f"{sid}: {record['open_calls']} model call(s) still open")
    except (AssertionError, aiohttp.ClientError) as exc:
        scenario.fail(f"{sid}: {exc}")
