"""The accept figure (issue 15): what ``POST /v1/stories`` costs the gateway, apart from
the pipeline's throughput.

A gateway runs alone on the real broker (``gateway_stack``): what it accepts stays on the
commands topic, as while every worker is down, so nothing but the accept path spends CPU
in it. Stories are posted at a fixed open-loop rate (a slow answer does not slow the
arrivals) spread round-robin over ``users`` accounts whose tokens are made first, untimed.

Per step: latency percentiles, statuses, the rate achieved, the gateway's CPU seconds per
accepted story (less its idle rate, measured just before) and the cores it used (CPU s
over wall s). The figure steps the rate up and gives the most stories a second per
gateway core among the steps with p99 under ``P99_LIMIT_MS`` and nothing refused, and the
gateway's CPU per story at a moderate rate (the fixed cost of a story). The load client
runs in this process; its CPU is reported beside the gateway's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections import Counter
from typing import Any

import aiohttp
import orjson

from benchmarks.measure import Window, idle_cpu, percentiles, story
from benchmarks.stack import Stack, gateway_stack

RATES = (100, 200, 300, 400, 600)
STEP_S = 5.0
USERS = 50
MODERATE_RATE = 200
P99_LIMIT_MS = 100.0
IDLE_S = 2.0
# Between steps: the last answers are in, the gateway's flushes and timers are done.
SETTLE_S = 1.0
STORY_WORDS = 60
POOL = 256
REQUEST_TIMEOUT_S = 15.0
# Every step runs on one stack; accepted stories stay queued, so the per-user running
# limit is lifted far past what a run submits (as the stack's other limits are).
STACK_ENV = {"AMPLIFY_MAX_RUNNING_PER_USER": "10000000"}


async def tokens_for(stack: Stack, session: aiohttp.ClientSession, users: int) -> list[str]:
    run = uuid.uuid4().hex[:6]
    return list(
        await asyncio.gather(*(stack.token(session, f"acc{run}u{n}") for n in range(users)))
    )


async def accept_capacity(
    stack: Stack,
    *,
    rate: float,
    seconds: float,
    users: int,
    session: aiohttp.ClientSession | None = None,
    tokens: list[str] | None = None,
) -> dict[str, Any]:
    """Post ``rate`` stories a second for ``seconds`` over ``users`` accounts (the
    session and tokens of an earlier step may be passed in to go on with them)."""
    if session is None:
        connector = aiohttp.TCPConnector(limit=POOL)
        async with aiohttp.ClientSession(connector=connector) as own:
            return await accept_capacity(
                stack, rate=rate, seconds=seconds, users=users, session=own, tokens=tokens
            )
    if tokens is None:
        tokens = await tokens_for(stack, session, users)
    headers = [
        {"Authorization": f"Bearer {token}", "Content-Type": "application/json"} for token in tokens
    ]
    bodies = [
        orjson.dumps({"text": story(STORY_WORDS, seed), "audio": False}) for seed in range(16)
    ]
    url = f"{stack.base}/v1/stories"
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    samples: list[float] = []
    statuses: Counter[str] = Counter()

    async def one(i: int) -> None:
        began = time.monotonic()
        try:
            async with session.post(
                url,
                data=bodies[i % len(bodies)],
                headers=headers[i % len(headers)],
                timeout=timeout,
            ) as res:
                await res.read()
                statuses[str(res.status)] += 1
        except (aiohttp.ClientError, TimeoutError) as exc:
            statuses[type(exc).__name__] += 1
            return
        samples.append((time.monotonic() - began) * 1000)

    gateway = {"gateway": stack.gateway_pid}
    idle = await idle_cpu(gateway, IDLE_S)
    window = Window(gateway, idle)
    window.start()
    began = time.monotonic()
    tasks = []
    late = 0
    for i in range(int(rate * seconds)):
        delay = began + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.01:
            late += 1  # this client fell behind its own schedule
        tasks.append(asyncio.create_task(one(i)))
    sent_in = time.monotonic() - began
    await asyncio.gather(*tasks)
    wall = time.monotonic() - began
    measured = window.stop()
    cpu = measured["cpu_s"]
    accepted = statuses["202"]
    gateway_net = measured["net_cpu_s"]["gateway"]
    return {
        "rate": rate,
        "seconds": seconds,
        "users": users,
        "statuses": dict(statuses),
        "sent_per_s": round(len(tasks) / sent_in, 1),
        "sent_late": late,
        "accepted_per_s": round(accepted / wall, 1),
        "answered_in_s": round(wall, 2),
        "gateway_idle_cores": round(idle.rates["gateway"], 4),
        "gateway_cores": round(cpu["gateway"] / wall, 3),
        "accepted_per_core": round(accepted / max(cpu["gateway"], 1e-9), 1),
        "gateway_cpu_ms_per_story": round(1000 * gateway_net / max(1, accepted), 3),
        "client_cpu_ms_per_story": round(1000 * cpu["client"] / max(1, len(tasks)), 3),
        "cpu_s": cpu,
    } | percentiles(samples)


def passed(step: dict[str, Any]) -> bool:
    total = sum(step["statuses"].values())
    return (
        step.get("n", 0) > 0
        and step["statuses"].get("202") == total
        and (step["p99"] < P99_LIMIT_MS)
    )


async def accept_figure(
    *,
    rates: tuple[float, ...] = RATES,
    seconds: float = STEP_S,
    users: int = USERS,
    moderate: float = MODERATE_RATE,
    **env: str,
) -> dict[str, Any]:
    """Step the rate up on one gateway-only stack, stopping after the first step past
    ``moderate`` that fails (p99 at or over the limit, or anything but 202)."""
    steps: list[dict[str, Any]] = []
    async with gateway_stack(**(STACK_ENV | env)) as stack:
        connector = aiohttp.TCPConnector(limit=POOL)
        async with aiohttp.ClientSession(connector=connector) as session:
            tokens = await tokens_for(stack, session, users)
            # A first short run warms the gateway (imports, producer metadata, pools).
            await accept_capacity(
                stack, rate=50, seconds=1, users=users, session=session, tokens=tokens
            )
            for rate in sorted({*rates, moderate}):
                await asyncio.sleep(SETTLE_S)
                step = await accept_capacity(
                    stack, rate=rate, seconds=seconds, users=users, session=session, tokens=tokens
                )
                steps.append(step)
                if rate >= moderate and not passed(step):
                    break
    good = [s for s in steps if passed(s)]
    best = max(good, key=lambda s: s["accepted_per_core"], default=None)
    at_moderate = next((s for s in steps if s["rate"] == moderate), None)
    return {
        "p99_limit_ms": P99_LIMIT_MS,
        "accepted_per_gateway_core": None if best is None else best["accepted_per_core"],
        "at_rate": None if best is None else best["rate"],
        "highest_rate_passed": max((s["rate"] for s in good), default=None),
        "gateway_cpu_ms_per_story": (
            None if at_moderate is None else at_moderate["gateway_cpu_ms_per_story"]
        ),
        "moderate_rate": moderate,
        "steps": steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", type=float, nargs="+", default=list(RATES))
    parser.add_argument("--seconds", type=float, default=STEP_S)
    parser.add_argument("--users", type=int, default=USERS)
    parser.add_argument("--moderate", type=float, default=MODERATE_RATE)
    args = parser.parse_args()
    figure = asyncio.run(
        accept_figure(
            rates=tuple(args.rates), seconds=args.seconds, users=args.users, moderate=args.moderate
        )
    )
    print(json.dumps(figure, indent=2))


if __name__ == "__main__":
    main()
