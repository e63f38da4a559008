"""``make bench``: every figure, each next to its baselines from the same run, written to
``benchmarks/results/<date>.json``, ``<date>.md`` and ``<date>.png``.

    python -m benchmarks.run [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import documents, measure, report
from benchmarks.stack import Stack, documents_stack, running_stack

RESULTS = Path(__file__).resolve().parent / "results"
TOKENS_PER_S = 30.0
FIRST_TOKEN_MS = 200
TARGET_P99_MS = 50.0
# Enhancer processes (one consumer group): the provider SDK's per-chunk parsing is most of
# the service's CPU, and one process can use one core only. With four partitions each of
# the two takes half the stories (three would split them two to one).
ENHANCERS = 2
STACK_ENV = {"AMPLIFY_TOPIC_PARTITIONS": "4"}
# The second series: the same 30 tokens/s, in chunks of several tokens as Gemini streams
# them (one token a chunk is the finest pacing, and the SDK parses every chunk).
CHUNK_TOKENS = 8
CHUNKED_LEVELS = [200, 500]
# Streams held at once (started over HELD_RAMP_S, each HELD_WORDS long), by chunking: the
# most of them with p99 under 50 ms is the "held" figure.
HELD_LEVELS = {1: [20, 50], CHUNK_TOKENS: [100, 200, 500]}
HELD_RAMP_S = 5.0
HELD_WORDS = 450


# Suggestions as they are found: one story at the pace of the issue that asked for it.
SUGGESTION_WORDS = 500
SUGGESTION_TOKENS_PER_S = 20.0

# Live documents: the service's defaults for when a pass runs, named so the figure knows.
DOCUMENTS_ENV = {"AMPLIFY_DOC_IDLE_MS": "300"}
# The raw round trip beside them, for as long as it takes to gather a few thousand records.
DOCUMENTS_FLOOR_S = 8.0

FIGURES = (
    "first_audio",
    "suggestions",
    "documents",
    "idle_sockets",
    "submit",
    "token_latency",
    "token_latency_chunked",
    "held_streams",
)


async def run(
    quick: bool,
    *,
    only: set[str] | None = None,
    levels: list[int] | None = None,
    baselines: bool = True,
    env: dict[str, str] | None = None,
    enhancers: int = ENHANCERS,
) -> dict[str, Any]:
    """Every figure; ``only``, ``levels`` and ``baselines=False`` pick a part of them
    (for a quick look at one figure while working on it)."""
    wanted = set(FIGURES) if only is None else only
    env = STACK_ENV | (env or {})
    levels = levels or ([1, 50] if quick else [1, 50, 200, 500])
    words = 60 if quick else 90  # about 2-3 s of tokens at 30/s per stream
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": "2 cores, 24 GiB",
        "tokens_per_s": TOKENS_PER_S,
        "first_token_ms": FIRST_TOKEN_MS,
    }
    started = time.monotonic()
    # The first stack only for the figures that run on it.
    if wanted & {"first_audio", "idle_sockets", "token_latency"}:
        async with running_stack(
            first_token_ms=FIRST_TOKEN_MS, tokens_per_s=TOKENS_PER_S, enhancers=enhancers, **env
        ) as stack:
            # The light figures first: a saturated level leaves a backlog behind it.
            if "first_audio" in wanted:
                results["first_audio_pipelined"] = await measure.first_audio(stack, 500)
                print(json.dumps(results["first_audio_pipelined"]), flush=True)
            if "idle_sockets" in wanted:
                results["idle_sockets"] = await measure.idle_socket_memory(
                    stack, 1000 if quick else 5000
                )
                print(json.dumps(results["idle_sockets"]), flush=True)
            latency = []
            for streams in levels if "token_latency" in wanted else []:
                latency.append(await _latency_level(stack, streams, words, TOKENS_PER_S, baselines))
                print(json.dumps(latency[-1]), flush=True)
                if latency[-1]["service"]["timed_out"]:
                    break  # the machine is saturated: higher levels would only say so again
            if "token_latency" in wanted:
                results["token_latency"] = latency
                results["max_streams_p99_under_50ms"] = _most_held(latency)
    if "token_latency_chunked" in wanted:
        results["token_latency_chunked"] = await _chunked_series(
            levels or CHUNKED_LEVELS, words, baselines, env, enhancers
        )
    if "held_streams" in wanted:
        results["held_streams"] = [
            await _held_series(chunk, held_levels, env, enhancers)
            for chunk, held_levels in HELD_LEVELS.items()
        ]
    if "suggestions" in wanted:
        async with running_stack(
            first_token_ms=FIRST_TOKEN_MS,
            tokens_per_s=SUGGESTION_TOKENS_PER_S,
            enhancers=enhancers,
            **env,
        ) as stack:
            results["suggestions"] = await measure.suggestion_timing(stack, SUGGESTION_WORDS)
            results["suggestions"]["tokens_per_s"] = SUGGESTION_TOKENS_PER_S
            print(json.dumps(results["suggestions"]), flush=True)
    if "documents" in wanted:
        results["documents"] = await _documents_figure(env, baselines)
    if wanted & {"first_audio", "submit"}:
        # A fresh stack, with no backlog of the saturated levels: the serial baseline of
        # first audio (the same narration, started only once the rewrite is whole) and
        # then the submissions (which leave 2,000 stories' work behind them).
        async with running_stack(
            first_token_ms=FIRST_TOKEN_MS,
            tokens_per_s=TOKENS_PER_S,
            enhancers=enhancers,
            **(env | {"AMPLIFY_NARRATE_AFTER_REWRITE": "true"}),
        ) as fresh:
            if "first_audio" in wanted:
                results["first_audio_serial"] = await measure.first_audio(fresh, 500)
                print(json.dumps(results["first_audio_serial"]), flush=True)
            if "submit" in wanted:
                results["submit"] = await measure.submit_latency(fresh, 200, 3 if quick else 10)
                print(json.dumps(results["submit"]), flush=True)
    results["seconds"] = round(time.monotonic() - started, 1)
    return results


async def _documents_figure(env: dict[str, str], baselines: bool) -> dict[str, Any]:
    """Writers typing into live documents on a fresh stack (a gateway and a documents
    worker), then the raw aiokafka round trip at the same aggregate rate, produced as the
    gateway produces an edit's command (acks from all replicas, idempotent)."""
    async with documents_stack(**(DOCUMENTS_ENV | env)) as stack:
        figure = await documents.typing_latency(stack)
        print(json.dumps(figure), flush=True)
        figure["kafka_floor"] = {}
        if baselines:
            figure["kafka_floor"] = await measure.kafka_floor(
                figure["writers"], documents.KEYS_PER_S, seconds=DOCUMENTS_FLOOR_S, acks="all"
            )
            print(json.dumps(figure["kafka_floor"]), flush=True)
    return figure


async def _latency_level(
    stack: Stack, streams: int, words: int, rate: float, baselines: bool
) -> dict[str, Any]:
    """One concurrency level: the service, then its floor and direct baseline."""
    service = await measure.service_token_latency(stack, streams, words)
    floor: dict[str, Any] = {}
    direct: dict[str, Any] = {}
    if baselines:
        floor = await measure.kafka_floor(streams, rate, seconds=4)
        direct = await measure.direct_baseline(stack.env["AMPLIFY_GEMINI_BASE_URL"], streams, words)
    return {"streams": streams, "service": service, "kafka_floor": floor, "direct": direct}


async def _chunked_series(
    levels: list[int], words: int, baselines: bool, env: dict[str, str], enhancers: int
) -> dict[str, Any]:
    """Token latency with ``CHUNK_TOKENS`` tokens a chunk, on a fresh stack; the floor
    at the same record rate (a record a chunk)."""
    latency = []
    async with running_stack(
        first_token_ms=FIRST_TOKEN_MS,
        tokens_per_s=TOKENS_PER_S,
        enhancers=enhancers,
        **(env | {"AMPLIFY_FAKE_GEMINI_TOKENS_PER_CHUNK": str(CHUNK_TOKENS)}),
    ) as stack:
        for streams in levels:
            level = await _latency_level(
                stack, streams, words, TOKENS_PER_S / CHUNK_TOKENS, baselines
            )
            latency.append(level)
            print(json.dumps(level), flush=True)
            if level["service"]["timed_out"]:
                break
    return {
        "tokens_per_chunk": CHUNK_TOKENS,
        "levels": latency,
        "max_streams_p99_under_50ms": _most_held(latency),
    }


def _most_held(latency: list[dict[str, Any]]) -> int:
    """The most streams of a series whose token latency p99 stayed under the target."""
    held = [
        x["streams"]
        for x in latency
        if x["service"].get("p99", 1e9) < TARGET_P99_MS and not x["service"]["timed_out"]
    ]
    return max(held, default=0)


async def _held_series(
    chunk: int, levels: list[int], env: dict[str, str], enhancers: int
) -> dict[str, Any]:
    """Streams held at once, ``chunk`` tokens a chunk, on a fresh stack."""
    found = []
    async with running_stack(
        first_token_ms=FIRST_TOKEN_MS,
        tokens_per_s=TOKENS_PER_S,
        enhancers=enhancers,
        **(env | {"AMPLIFY_FAKE_GEMINI_TOKENS_PER_CHUNK": str(chunk)}),
    ) as stack:
        for streams in levels:
            level = await measure.held_streams_latency(
                stack, streams, HELD_WORDS, HELD_RAMP_S, TOKENS_PER_S
            )
            found.append(level)
            print(json.dumps(level), flush=True)
            if level["timed_out"]:
                break
    held = [x["streams"] for x in found if x.get("p99", 1e9) < TARGET_P99_MS and not x["timed_out"]]
    return {
        "tokens_per_chunk": chunk,
        "levels": found,
        "max_streams_p99_under_50ms": max(held, default=0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer, smaller runs")
    parser.add_argument(
        "--only",
        help=f"comma-separated figures to run, of {', '.join(FIGURES)} "
        "(prints them and their rows of the table; writes no results files)",
    )
    parser.add_argument(
        "--levels", help="comma-separated stream counts for token_latency (e.g. 200)"
    )
    parser.add_argument(
        "--no-baselines", action="store_true", help="skip the floor and direct baselines"
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for every process of the stack (e.g. AMPLIFY_EVENT_LOOP=asyncio)",
    )
    parser.add_argument("--enhancers", type=int, help=f"enhancer processes ({ENHANCERS})")
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    only = set(args.only.split(",")) if args.only else None
    if only is not None and (unknown := only - set(FIGURES)):
        parser.error(f"unknown figures: {', '.join(sorted(unknown))}")
    levels = [int(x) for x in args.levels.split(",")] if args.levels else None
    partial = only is not None or levels is not None or args.no_baselines or bool(env)
    if args.enhancers is not None:
        partial = True
    results = asyncio.run(
        run(
            args.quick,
            only=only,
            levels=levels,
            baselines=not args.no_baselines,
            env=env,
            enhancers=args.enhancers or ENHANCERS,
        )
    )
    if partial:
        print(json.dumps(results, indent=2))
        print(report.markdown(results))
        return
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / datetime.now(UTC).strftime("%Y-%m-%d")
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    stem.with_suffix(".md").write_text(report.markdown(results))
    report.plot(results, stem.with_suffix(".png"))
    print(report.markdown(results))
    print(f"written: {stem}.json, .md, .png")


if __name__ == "__main__":
    main()
