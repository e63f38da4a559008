"""The broker goes away for a few seconds while stories keep coming: every story the
gateway accepted (202) completes exactly once, every one it refused got a retryable 503,
and ``/readyz`` said 503 meanwhile."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.faults.conftest import (
    LOGS_DIR,
    Broker,
    Stack,
    StackFactory,
    StoryView,
    TopicLog,
    count_stories,
    new_user,
    progress,
    read_until,
    run_script,
    story_text,
    summarize,
    ws_url,
)

LOGS = LOGS_DIR / "test_broker_outage"
SUBMIT_EVERY_S = 0.1
# The client submits for a few accounts in turn: the gateway admits one submission of an
# account at a time, and one account at 10 a second measures that, not the outage.
USERS = 4
BEFORE_S = 3.0
DOWN_S = 5.0
AFTER_S = 6.0
# A submission the gateway holds longer than this is neither accepted nor refused.
ANSWER_TIMEOUT_S = 30.0
# Every accepted story has completed this long after the last submission's answer (the
# wait ends early once nothing more completes for 20 s).
OUTCOMES_WITHIN_S = 90.0
# Sockets that watch a story of their own through the outage (reconnecting and resuming
# by cursor if the socket goes): what each puts together must be the outcome's.
WATCHERS = 4


def short_story(i: int) -> str:
    return (
        f"Night {i + 1}. Mara walked into the old lighthouse at dusk. The door was opened "
        'by the wind. "Stay close," Tom whispered nervously.'
    )


@dataclass
class Answer:
    sent_at: float
    status: int | None
    body: Any
    error: str | None = None


async def what_is_left(stack: Stack, story_ids: list[str]) -> list[str]:
    """Per story and topic: its records' types as a read_committed and as a
    read_uncommitted reader sees them."""
    found = []
    for topic in ("segments", "outcomes", "stream"):
        for isolation in ("read_committed", "read_uncommitted"):
            async with TopicLog(stack.bootstrap, stack.topic(topic), isolation=isolation) as log:
                await asyncio.sleep(3)
                for sid in story_ids:
                    kinds = Counter(
                        f"{e.get('type')}#{e.get('attempt', '-')}" for e in log.events_of(sid)
                    )
                    found.append(f"{sid[:8]} {topic} {isolation}: {dict(kinds)}")
    return found


async def java_view(broker: Broker, stack: Stack, story_ids: list[str]) -> list[str]:
    """The same as Kafka's own consumer sees it (read_committed), and the segments log as
    stored (every batch's producer, epoch and markers), kept whole in test-artifacts."""
    topic = stack.topic("segments")
    out = await run_script(
        "tool",
        "consumer.ConsoleConsumer",
        "--bootstrap-server",
        broker.bootstrap,
        "--topic",
        topic,
        "--from-beginning",
        "--isolation-level",
        "read_committed",
        "--timeout-ms",
        "8000",
        env=broker.env,
        timeout=60,
        check=False,
    )
    found = [f"java read_committed {sid[:8]}: {out.count(sid)} records" for sid in story_ids]
    data = Path(broker.env["KAFKA_RUN"]) / "data"
    dumps = []
    for part in sorted(data.glob(f"{topic}-*")):
        for log in sorted(part.glob("*.log")):
            dumps.append(
                await run_script(
                    "tool",
                    "DumpLogSegments",
                    "--files",
                    str(log),
                    "--print-data-log",
                    env=broker.env,
                    timeout=60,
                    check=False,
                )
            )
    LOGS.mkdir(parents=True, exist_ok=True)
    (LOGS / "segments-dump.txt").write_text("\n".join(dumps))
    return found


@pytest.mark.kafka
@pytest.mark.timeout(360)
async def test_broker_outage(own_broker: Broker, stacks: StackFactory) -> None:
    name = "test_broker_outage"
    stack = await stacks(bootstrap=own_broker.bootstrap, AMPLIFY_LOCAL_PIECE_DELAY_MS="2")
    gateway, *_ = await asyncio.gather(
        stack.gateway(), stack.worker("enhancer"), stack.worker("narrator")
    )
    answers: list[Answer] = []
    ready: list[tuple[float, int | None]] = []
    stopping = asyncio.Event()
    began = time.monotonic()

    # No pool limit: held submissions must not queue the ones behind them in the client.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        tokens = [await new_user(session, gateway.base) for _ in range(USERS)]

        async def submit(i: int) -> None:
            sent = time.monotonic()
            try:
                async with (
                    asyncio.timeout(ANSWER_TIMEOUT_S),
                    session.post(
                        f"{gateway.base}/v1/stories",
                        json={"text": short_story(i), "request_id": f"o{i}"},
                        headers={"Authorization": f"Bearer {tokens[i % USERS]}"},
                    ) as res,
                ):
                    body = await res.json(content_type=None)
                    answers.append(Answer(sent, res.status, body))
            except Exception as exc:
                answers.append(Answer(sent, None, None, repr(exc)))

        async def submitter() -> None:
            async with asyncio.TaskGroup() as group:
                i = 0
                while not stopping.is_set():
                    group.create_task(submit(i))
                    i += 1
                    await asyncio.sleep(SUBMIT_EVERY_S)

        async def poll_ready() -> None:
            while not stopping.is_set():
                at = time.monotonic()
                try:
                    async with (
                        asyncio.timeout(3),
                        session.get(f"{gateway.base}/readyz") as res,
                    ):
                        ready.append((at, res.status))
                except Exception:
                    ready.append((at, None))
                await asyncio.sleep(0.2)

        views = [StoryView() for _ in range(WATCHERS)]
        watch_failures: list[str] = []

        async def watch(i: int) -> None:
            view = views[i]
            await asyncio.sleep(BEFORE_S - 1)  # long stories, still going when it stops
            headers = {"Authorization": f"Bearer {tokens[i % USERS]}"}
            try:
                async with asyncio.timeout(BEFORE_S + DOWN_S + OUTCOMES_WITHIN_S):
                    while view.completed is None:
                        try:
                            async with session.ws_connect(
                                ws_url(gateway.base), headers=headers
                            ) as ws:
                                if view.story_id is None:
                                    text = story_text(i, passages=12)
                                    await ws.send_json({"type": "story.submit", "text": text})
                                else:
                                    resume = {"type": "story.resume", "story_id": view.story_id}
                                    if view.last_cursor is not None:
                                        resume["cursor"] = view.last_cursor
                                    await ws.send_json(resume)
                                await read_until(ws, view)
                        except (aiohttp.ClientError, AssertionError) as exc:
                            progress(name, f"watcher {i}: {exc!r}; resuming")
                            await asyncio.sleep(1)
            except Exception as exc:
                watch_failures.append(f"watcher {i} (story {view.story_id}): {exc!r}")

        watchers = asyncio.gather(*(watch(i) for i in range(WATCHERS)))
        load = asyncio.gather(submitter(), poll_ready())
        try:
            await asyncio.sleep(BEFORE_S)
            progress(name, "stopping the broker")
            down_at = time.monotonic()
            mid_story = sum(1 for v in views if v.story_id and v.completed is None)
            await own_broker.stop()
            stopped_at = time.monotonic()
            await asyncio.sleep(DOWN_S)
            progress(name, "starting the broker again")
            script = await own_broker.start_until_it_answers()
            up_at = time.monotonic()
            progress(name, f"broker back after {up_at - down_at:.1f}s")
            await asyncio.sleep(AFTER_S)
        finally:
            stopping.set()
            await load

        await watchers
        accepted = [a.body["story_id"] for a in answers if a.status == 202]
        accepted += [v.story_id for v in views if v.story_id is not None]
        failures: list[str] = list(watch_failures)
        try:
            await script
        except Exception as exc:
            failures.append(f"scripts/kafka.sh start (the restart) failed: {exc}")
        async with TopicLog(own_broker.bootstrap, stack.topic("outcomes")) as outcomes:
            await outcomes.wait_completed(accepted, timeout=OUTCOMES_WITHIN_S)
            refused = [a for a in answers if a.status == 503]
            for view in views:
                if view.story_id is None:
                    failures.append("a watcher's story was not accepted before the outage")
                else:
                    failures += view.check_against(outcomes)
            if not any(v.count("audio.chunk") for v in views):
                failures.append("no watcher heard any audio")
            for a in answers:
                if a.status == 202:
                    continue
                if a.status == 503:
                    error = (a.body or {}).get("error", {})
                    if error.get("code") != "unavailable" or error.get("retryable") is not True:
                        failures.append(f"503 without code unavailable, retryable true: {a.body}")
                else:
                    failures.append(f"answer {a.status} {a.error or a.body}")
            outage = [s for at, s in ready if stopped_at <= at <= up_at]
            if 503 not in outage:
                seen = sorted(set(map(str, outage)))
                failures.append(f"/readyz during the outage answered {seen}")
            if not [a for a in answers if a.status == 202 and a.sent_at > up_at]:
                failures.append("nothing was accepted once the broker was back")
            back = [a.sent_at - up_at for a in answers if a.status == 202 and a.sent_at > up_at]
            first_back = f"{min(back):.1f}s" if back else "never"

            def phase(start: float, end: float) -> str:
                seen = Counter(
                    str(a.status or a.error) for a in answers if start <= a.sent_at < end
                )
                return ", ".join(f"{n} x {what}" for what, n in seen.most_common()) or "-"

            details = [
                f"submissions={len(answers)} accepted={len(accepted)} refused_503={len(refused)} "
                f"broker_down={up_at - down_at:.1f}s (stop and restart included) "
                f"readyz_503s={sum(1 for _, s in ready if s == 503)} "
                f"first_accepted_after_restart={first_back} "
                f"watchers_mid_story_at_stop={mid_story}/{WATCHERS} "
                f"elapsed={time.monotonic() - began:.1f}s",
                f"answers before the stop: {phase(0, down_at)}",
                f"answers while stopping: {phase(down_at, stopped_at)}",
                f"answers while down: {phase(stopped_at, up_at)}",
                f"answers after the restart: {phase(up_at, math.inf)}",
                *summarize(failures),
            ]
            if lost := [sid for sid in dict.fromkeys(accepted) if not outcomes.completions(sid)]:
                # Stories without an end: what the broker says of the transactions (a
                # hanging one holds read_committed readers back for good), and what each
                # of them left on the topics, committed or not.
                details.append(await own_broker.transactions("find-hanging", "--broker-id", "1"))
                details.append(await own_broker.transactions("list"))
                details += await what_is_left(stack, lost[:5])
                details += await java_view(own_broker, stack, lost[:5])
            counts = count_stories(name, len(answers) + WATCHERS, accepted, outcomes, details)
    assert counts.lost == 0
    assert counts.duplicated == 0
    assert not failures, "\n".join(failures[:20])
