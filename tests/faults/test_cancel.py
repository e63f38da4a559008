"""A cancel lands within a second, even while the model is slow: the client hears
``story.completed`` ``cancelled``, the model's stream is closed, and the outcome topic
says cancelled, once."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from tests.faults.conftest import (
    Budget,
    StackFactory,
    StoryView,
    TopicLog,
    count_stories,
    fake_gemini_record,
    new_user,
    progress,
    read_until,
    story_text,
    summarize,
    with_fake_gemini,
    ws_url,
)

TRIALS = 10
CANCEL_WITHIN_S = 1.0
# The fake's record may lag the cancel a little: the worker closes the connection after
# it has published story.completed.
STREAMS_CLOSED_WITHIN_S = 2.0


@pytest.mark.kafka
@pytest.mark.timeout(200)
async def test_cancel_lands_within_a_second(stacks: StackFactory) -> None:
    name = "test_cancel_lands_within_a_second"
    # A slow model: the first token after 200 ms, then 10 a second.
    stack, fake_base = await with_fake_gemini(stacks, first_token_ms=200, tokens_per_s=10)
    gateway, *_ = await asyncio.gather(
        stack.gateway(), stack.worker("enhancer"), stack.worker("narrator")
    )
    views: list[StoryView] = []
    failures: list[str] = []
    latencies: list[float] = []
    budget = Budget(120)
    async with (
        aiohttp.ClientSession() as session,
        TopicLog(stack.bootstrap, stack.topic("outcomes")) as outcomes,
    ):
        token = await new_user(session, gateway.base)
        headers = {"Authorization": f"Bearer {token}"}
        for trial in range(TRIALS):
            if budget.left <= 1:
                failures.append(f"out of time: {trial} of {TRIALS} trials ran")
                break
            view = StoryView()
            views.append(view)
            try:
                async with (
                    budget.timeout(30),
                    session.ws_connect(ws_url(gateway.base), headers=headers) as ws,
                ):
                    await ws.send_json({"type": "story.submit", "text": story_text(trial)})
                    await read_until(ws, view, lambda v: v.count("enhancement.delta") >= 1)
                    if view.completed is not None or view.story_id is None:
                        failures.append(f"trial {trial}: the story ended before its first delta")
                        continue
                    asked = time.monotonic()
                    await ws.send_json({"type": "story.cancel", "story_id": view.story_id})
                    try:
                        async with asyncio.timeout(10):
                            await read_until(ws, view)
                    except TimeoutError:
                        failures.append(f"{view.story_id}: no story.completed 10 s after cancel")
                        continue
                    latencies.append(time.monotonic() - asked)
            except Exception as exc:
                failures.append(f"trial {trial} (story {view.story_id}): {exc!r}")
                continue
            sid = view.story_id
            assert view.completed is not None
            status = view.completed.get("status")
            progress(name, f"trial {trial}: {status} {latencies[-1] * 1000:.0f} ms after cancel")
            if status != "cancelled":
                failures.append(f"{sid}: story.completed status {status}, not cancelled")
            if latencies[-1] >= CANCEL_WITHIN_S:
                failures.append(f"{sid}: cancelled after {latencies[-1]:.2f}s (limit 1 s)")
            # The model call was given up: the fake saw its connection close.
            try:
                record = await fake_gemini_record(session, fake_base)
                deadline = time.monotonic() + STREAMS_CLOSED_WITHIN_S
                while record["open_streams"] and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                    record = await fake_gemini_record(session, fake_base)
                if record["open_streams"]:
                    failures.append(
                        f"{sid}: the fake still has {record['open_streams']} open stream(s) "
                        f"{STREAMS_CLOSED_WITHIN_S} s after the cancel"
                    )
                if record["open_calls"]:
                    failures.append(f"{sid}: {record['open_calls']} model call(s) still open")
            except (AssertionError, aiohttp.ClientError) as exc:
                failures.append(f"{sid}: {exc}")
        accepted = [v.story_id for v in views if v.story_id is not None]
        await outcomes.wait_completed(accepted, timeout=max(5.0, min(30.0, budget.left)))
        for sid in accepted:
            statuses = [e.get("status") for e in outcomes.completions(sid)]
            if statuses and statuses[0] != "cancelled":
                failures.append(f"{sid}: story.completed on the outcome topic says {statuses}")
        spread = (
            f"{min(latencies) * 1000:.0f}..{max(latencies) * 1000:.0f} ms" if latencies else "none"
        )
        record = await fake_gemini_record(session, fake_base)
        details = [
            f"cancel_to_completed={spread} fake_calls={record['requests']} "
            f"states={sorted({c['state'] for c in record['calls']})}",
            *summarize(failures),
        ]
        counts = count_stories(name, TRIALS, accepted, outcomes, details)
    assert counts.lost == 0
    assert counts.duplicated == 0
    assert not failures, "\n".join(failures[:20])
