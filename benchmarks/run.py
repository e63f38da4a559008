"""``make bench``: every figure, each next to its baselines (from the same run, but for
the figures before a piece of work, which name the results file they are read from), written to
``benchmarks/results/<date>.json``, ``<date>.md`` and ``<date>.png``.

    python -m benchmarks.run [--quick] [--only FIGURE,...]

Every level of a series runs on a fresh stack (no backlog or warm state of the level
before), and its CPU is counted less each process's idle rate, measured just before it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import accept, documents, measure, report, say, scale, soak
from benchmarks.stack import Stack, documents_stack, embedded_stack, running_stack

RESULTS = Path(__file__).resolve().parent / "results"
TOKENS_PER_S = 30.0
FIRST_TOKEN_MS = 200
# Enhancer processes (one consumer group): the provider SDK's per-chunk parsing is most of
# the service's CPU, and one process can use one core only. With four partitions each of
# the two takes half the stories (three would split them two to one).
ENHANCERS = 2
STACK_ENV = {"AMPLIFY_TOPIC_PARTITIONS": "4"}
# From a fresh stack's readiness to its idle measurement: the workers' groups settle.
LEVEL_SETTLE_S = 1.0

# The whole stack with no load: after it settles, over this long.
STACK_SETTLE_S = 8.0
STACK_IDLE_S = 10.0

# "All at once" (the burst figure): every stream submitted at the same moment, one token a
# chunk. The 1-stream level is longer, for enough samples for its p99 against the floor's.
BURST_LEVELS = [1, 50, 200]
BURST_WORDS = 90  # about 3 s of tokens at 30/s per stream
SINGLE_STREAM_WORDS = 240
# The burst with chunks of several tokens as Gemini streams them (one token a chunk is the
# finest pacing, and the SDK parses every chunk): only with --only, as the held series at
# the same chunking (the headline) says more about that load, within make bench's 15 min.
CHUNK_TOKENS = 8
CHUNKED_LEVELS = [200]
# The raw aiokafka round trip beside a level, for this long (the 1-stream level: as long
# as its stream, for as many samples).
FLOOR_S = 4.0

# "Held" (the headline): streams started over HELD_RAMP_S, each HELD_WORDS long, measured
# while all stream. The levels reach the targets (report.HELD_TARGETS); the top level of
# each series is also where the pipeline's CPU per word is set against the raw round
# trip's CPU per record at the same record rate.
HELD_LEVELS = {1: [20, 50, 100], CHUNK_TOKENS: [100, 200, 500]}
HELD_RAMP_S = 5.0
HELD_WORDS = 450
# A held level streams for about 21 s; one that takes this long did not keep up.
HELD_LIMIT_S = 35.0

# Fixed cost per story: many one-word stories (their relay is next to nothing), CPU each.
# A story is two model calls (the rewrite, and the analysis, whose suggestions and insights
# the fake streams at the same pace: about 3.5 s of a story's time whatever its length);
# these figures run the fake at CHUNK_TOKENS tokens a chunk, as Gemini streams.
STORY_COST_RATE = 25.0
STORY_COST_S = 8.0
# Pipeline throughput: short stories submitted at each rate in turn; the highest at which
# completions keep up is the figure. Kept up: every story completed, the lag of the last
# quarter's submissions at most THROUGHPUT_GROWTH_MS over the first quarter's (no queue
# building), and submit to completed p99 within THROUGHPUT_LAG_X times a story's time alone.
THROUGHPUT_RATES = [20.0, 40.0, 80.0]
THROUGHPUT_S = 6.0
THROUGHPUT_WORDS = 12
THROUGHPUT_GROWTH_MS = 1000.0
THROUGHPUT_LAG_X = 2.0

# Suggestions as they are found: one story at the pace of the issue that asked for it.
SUGGESTION_WORDS = 500
SUGGESTION_TOKENS_PER_S = 20.0

# Live documents: the service's defaults for when a pass runs, named so the figure knows.
DOCUMENTS_ENV = {"AMPLIFY_DOC_IDLE_MS": "300"}
# The raw round trip beside them, for as long as it takes to gather a few thousand records.
DOCUMENTS_FLOOR_S = 8.0
# The documents figure before issue 15's work: its baseline, read from the results file of
# that run (not measured again: it is the code before the work).
DOCUMENTS_BEFORE_FILE = "benchmarks/results/2026-12-02-before-issue-15.json"
# POST /v1/stories before issue 15 (7263976, benchmarks/accept.py's steps on a gateway
# alone): measured once on 2026-12-02, before accept.py was committed, and no results
# file was kept, so the row says so rather than passing it for this run's.
ACCEPT_BEFORE = (
    "not this run: 7263976 on 2026-12-02 (no results file kept): 88-99/s per core, "
    "none at p99 < 100 ms (p99 1.3-2.9 s at 100/s)"
)

# The soak on each bus: ten minutes (four with --quick, still past the minute it is
# measured from). Its baseline is the run before issue 26's work, kept in its own file.
SOAK_QUICK_S = 240.0
SOAK_BEFORE_FILE = "benchmarks/results/2026-12-07-soak-before-issue-26.json"

# The writer's say across clients (the page and the language server) on the embedded
# default: dismissals each way (fewer with --quick).
SAY_QUICK_SAMPLES = 15

FIGURES = (
    "idle_stack",
    "accept",
    "first_audio",
    "idle_sockets",
    "token_latency",
    "token_latency_chunked",
    "held_streams",
    "story_cost",
    "throughput",
    "suggestions",
    "documents",
    "soak",
    "say_cross_client",
    "scale_gateways",
    "submit",
)
# Figures make bench leaves out (run them with --only).
# "submit" mixes accepting with the pipeline's backlog: "accept" and "throughput" part them.
ONLY_ASKED = {"token_latency_chunked", "submit"}


async def run(
    quick: bool,
    *,
    only: set[str] | None = None,
    levels: list[int] | None = None,
    baselines: bool = True,
    env: dict[str, str] | None = None,
    enhancers: int = ENHANCERS,
    held: dict[int, list[int]] | None = None,
) -> dict[str, Any]:
    """Every figure; ``only``, ``levels``, ``held`` (the held series' levels by tokens a
    chunk) and ``baselines=False`` pick a part of them (for a quick look at one figure
    while working on it)."""
    wanted = set(FIGURES) - ONLY_ASKED if only is None else only
    env = STACK_ENV | (env or {})
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": "2 cores, 24 GiB",
        "tokens_per_s": TOKENS_PER_S,
        "first_token_ms": FIRST_TOKEN_MS,
    }
    started = time.monotonic()
    took: dict[str, float] = {}

    def done(figure: str, since: float) -> None:
        took[figure] = round(time.monotonic() - since, 1)

    if wanted & {"first_audio", "idle_sockets"}:
        since = time.monotonic()
        async with _stack(env, enhancers) as stack:
            if "first_audio" in wanted:
                results["first_audio_pipelined"] = await measure.first_audio(stack, 500)
                _show(results["first_audio_pipelined"])
            if "idle_sockets" in wanted:
                results["idle_sockets"] = await measure.idle_socket_memory(
                    stack, 1000 if quick else 5000
                )
                _show(results["idle_sockets"])
        done("first_audio, idle_sockets", since)
    if "token_latency" in wanted:
        since = time.monotonic()
        burst = levels or ([1, 50] if quick else BURST_LEVELS)
        results["token_latency"] = await _burst_series(burst, 1, quick, baselines, env, enhancers)
        results["max_streams_p99_under_50ms"] = _most_held(
            [x["service"] for x in results["token_latency"]]
        )
        done("token_latency", since)
    if "token_latency_chunked" in wanted:
        since = time.monotonic()
        chunked = await _burst_series(
            levels or CHUNKED_LEVELS, CHUNK_TOKENS, quick, baselines, env, enhancers
        )
        results["token_latency_chunked"] = {
            "tokens_per_chunk": CHUNK_TOKENS,
            "levels": chunked,
            "max_streams_p99_under_50ms": _most_held([x["service"] for x in chunked]),
        }
        done("token_latency_chunked", since)
    if "held_streams" in wanted:
        since = time.monotonic()
        held_levels = held or ({1: [20], CHUNK_TOKENS: [100]} if quick else HELD_LEVELS)
        results["held_streams"] = [
            await _held_series(chunk, series, env, enhancers, baselines)
            for chunk, series in held_levels.items()
        ]
        done("held_streams", since)
    if "story_cost" in wanted:
        since = time.monotonic()
        results["story_cost"] = await _story_cost(env, enhancers, quick)
        done("story_cost", since)
    if "throughput" in wanted:
        since = time.monotonic()
        results["throughput"] = await _throughput(env, enhancers, quick)
        done("throughput", since)
    if "accept" in wanted:
        since = time.monotonic()
        results["accept"] = await _accept_figure(env)
        done("accept", since)
    if "suggestions" in wanted:
        since = time.monotonic()
        async with _stack(env, enhancers, tokens_per_s=SUGGESTION_TOKENS_PER_S) as stack:
            results["suggestions"] = await measure.suggestion_timing(stack, SUGGESTION_WORDS)
            results["suggestions"]["tokens_per_s"] = SUGGESTION_TOKENS_PER_S
            _show(results["suggestions"])
        done("suggestions", since)
    if "documents" in wanted:
        since = time.monotonic()
        results["documents"] = await _documents_figure(env, baselines)
        done("documents", since)
    if "soak" in wanted:
        since = time.monotonic()
        results["soak"] = await _soak_figure(SOAK_QUICK_S if quick else soak.DURATION_S)
        done("soak", since)
    if "say_cross_client" in wanted:
        since = time.monotonic()
        async with embedded_stack() as stack:
            results["say_cross_client"] = await say.say_cross_client(
                stack, SAY_QUICK_SAMPLES if quick else say.SAMPLES
            )
        _show({k: v for k, v in results["say_cross_client"].items() if k not in say.DIRECTIONS})
        done("say_cross_client", since)
    if "scale_gateways" in wanted:
        since = time.monotonic()
        results["scale_gateways"] = await scale.scale_gateways(quick)
        done("scale_gateways", since)
    if wanted & {"first_audio", "submit"}:
        # The serial baseline of first audio (the same narration, started only once the
        # rewrite is whole) and then the submissions (which leave 2,000 stories' work
        # behind them).
        since = time.monotonic()
        async with _stack(env, enhancers, serial=True) as fresh:
            if "first_audio" in wanted:
                results["first_audio_serial"] = await measure.first_audio(fresh, 500)
                _show(results["first_audio_serial"])
            if "submit" in wanted:
                results["submit"] = await measure.submit_latency(fresh, 200, 3 if quick else 10)
                _show(results["submit"])
        done("first_audio serial, submit", since)
    if "idle_stack" in wanted:
        # Last, on a fresh stack: a broker that has just started is still compiling its
        # hot paths (JIT), which is not what a stack costs when nothing happens.
        since = time.monotonic()
        async with _stack(env, enhancers) as stack:
            await asyncio.sleep(STACK_SETTLE_S)
            results["idle_stack"] = await measure.stack_idle(
                stack, STACK_IDLE_S / 2 if quick else STACK_IDLE_S
            )
            _show(results["idle_stack"])
        done("idle_stack", since)
    results["seconds"] = round(time.monotonic() - started, 1)
    results["seconds_by_figure"] = took
    return results


def _show(figure: dict[str, Any]) -> None:
    print(json.dumps(figure), flush=True)


def _stack(
    env: dict[str, str],
    enhancers: int,
    *,
    chunk: int = 1,
    tokens_per_s: float = TOKENS_PER_S,
    serial: bool = False,
) -> contextlib.AbstractAsyncContextManager[Stack]:
    """A fresh stack: the fake Gemini at ``tokens_per_s`` in chunks of ``chunk`` tokens
    (``serial``: its enhancers narrate once the rewrite is whole)."""
    return running_stack(
        first_token_ms=FIRST_TOKEN_MS,
        tokens_per_s=tokens_per_s,
        enhancers=enhancers,
        serial=serial,
        **(env | {"AMPLIFY_FAKE_GEMINI_TOKENS_PER_CHUNK": str(chunk)}),
    )


@contextlib.asynccontextmanager
async def _idle_stack(
    env: dict[str, str], enhancers: int, *, chunk: int = 1
) -> AsyncIterator[tuple[Stack, measure.Idle]]:
    """A fresh stack, settled, with each process's idle rate measured."""
    async with _stack(env, enhancers, chunk=chunk) as stack:
        await asyncio.sleep(LEVEL_SETTLE_S)
        yield stack, await measure.idle_cpu(stack.pids)


async def _accept_figure(env: dict[str, str]) -> dict[str, Any]:
    """POST /v1/stories on a gateway alone (no worker takes the stories), the rate
    stepped up: the most stories a gateway core accepts with p99 under the limit."""
    figure = await accept.accept_figure(**env)
    best = next((s for s in figure["steps"] if s["rate"] == figure["at_rate"]), None)
    figure |= {
        "per_core_rate": figure["accepted_per_gateway_core"],
        "p99_ms": None if best is None else best["p99"],
        "gateway_ms_per_story": figure["gateway_cpu_ms_per_story"],
        "baseline": ACCEPT_BEFORE,
    }
    _show({k: v for k, v in figure.items() if k != "steps"})
    return figure


async def _documents_figure(env: dict[str, str], baselines: bool) -> dict[str, Any]:
    """Writers typing into live documents on a fresh stack (a gateway and a documents
    worker), then the raw aiokafka round trip at the same aggregate rate, produced as the
    gateway produces an edit's command (acks from all replicas, idempotent)."""
    async with documents_stack(**(DOCUMENTS_ENV | env)) as stack:
        figure = await documents.typing_latency(stack)
        _show(figure)
        figure["before_file"] = DOCUMENTS_BEFORE_FILE
        figure["kafka_floor"] = {}
        if baselines:
            figure["kafka_floor"] = await measure.kafka_floor(
                figure["writers"], documents.KEYS_PER_S, seconds=DOCUMENTS_FLOOR_S, linger_ms=0
            )
            _show(figure["kafka_floor"])
    return figure


async def _soak_figure(seconds: float) -> dict[str, Any]:
    """Steady use for ``seconds`` on the embedded default (``amplify-stream serve`` on
    the memory bus) and on Kafka (a gateway and each worker role as processes): does each
    process hold its memory?"""
    figure: dict[str, Any] = {"before_file": SOAK_BEFORE_FILE}
    for bus in ("memory", "kafka"):
        async with soak.soak_stack(bus) as stack:
            figure[bus] = await soak.soak(stack, seconds)
        _show({k: v for k, v in figure[bus].items() if k != "rss_series"})
    return figure


async def _burst_series(
    levels: list[int],
    chunk: int,
    quick: bool,
    baselines: bool,
    env: dict[str, str],
    enhancers: int,
) -> list[dict[str, Any]]:
    """All at once: each level on a fresh stack, then the raw round trip at the same record
    rate (a record a chunk) with the stack gone, and the direct baseline."""
    found = []
    for streams in levels:
        words = (SINGLE_STREAM_WORDS // (2 if quick else 1)) if streams == 1 else BURST_WORDS
        floor: dict[str, Any] = {}
        direct: dict[str, Any] = {}
        async with _idle_stack(env, enhancers, chunk=chunk) as (stack, idle):
            service = await measure.service_token_latency(stack, streams, words, idle)
            if baselines:
                direct = await measure.direct_baseline(
                    stack.env["AMPLIFY_GEMINI_BASE_URL"], streams, words
                )
        if baselines:
            floor = await measure.kafka_floor(
                streams,
                TOKENS_PER_S / chunk,
                seconds=words / TOKENS_PER_S if streams == 1 else FLOOR_S,
            )
        level = {"streams": streams, "service": service, "kafka_floor": floor, "direct": direct}
        found.append(level)
        _show(level)
        if service["timed_out"]:
            break  # the machine is saturated: higher levels would only say so again
    return found


def _most_held(levels: list[dict[str, Any]]) -> int:
    """The most streams of a series whose token latency p99 stayed under the target."""
    held = [
        x["streams"]
        for x in levels
        if x.get("p99", 1e9) < report.TARGET_P99_MS and not x["timed_out"]
    ]
    return max(held, default=0)


async def _held_series(
    chunk: int, levels: list[int], env: dict[str, str], enhancers: int, baselines: bool
) -> dict[str, Any]:
    """Streams held at once, ``chunk`` tokens a chunk, each level on a fresh stack; then
    the raw round trip at the top level's record rate, for its CPU per record."""
    found = []
    for streams in levels:
        async with _idle_stack(env, enhancers, chunk=chunk) as (stack, idle):
            level = await measure.held_streams_latency(
                stack,
                streams,
                HELD_WORDS,
                HELD_RAMP_S,
                TOKENS_PER_S,
                idle=idle,
                limit_s=HELD_LIMIT_S,
            )
        found.append(level)
        _show(level)
        if level["timed_out"]:
            break
    floor: dict[str, Any] = {}
    if baselines and found:
        floor = await measure.kafka_floor(found[-1]["streams"], TOKENS_PER_S / chunk, FLOOR_S)
        _show(floor)
    return {
        "tokens_per_chunk": chunk,
        "levels": found,
        "max_streams_p99_under_50ms": _most_held(found),
        # The raw round trip at the top level's record rate (a record a chunk).
        "kafka_floor": floor,
    }


@contextlib.asynccontextmanager
async def _story_stack(
    env: dict[str, str], enhancers: int, words: int
) -> AsyncIterator[tuple[Stack, measure.Idle, float]]:
    """A fresh stack for stories at a rate: one story of ``words`` words alone first (its
    submit to completed, and the stack's connections warmed), then the idle rates."""
    async with _stack(env, enhancers, chunk=CHUNK_TOKENS) as stack:
        await asyncio.sleep(LEVEL_SETTLE_S)
        alone = await measure.story_rate(stack, 1.0, 1.0, words, users=1)
        yield stack, await measure.idle_cpu(stack.pids), alone["lag_ms"].get("p50", 0.0)


async def _story_cost(env: dict[str, str], enhancers: int, quick: bool) -> dict[str, Any]:
    """One-word stories at a steady rate on a fresh stack: the CPU each story costs the
    gateway and the enhancers, whatever its length."""
    async with _story_stack(env, enhancers, 1) as (stack, idle, alone_ms):
        figure = await measure.story_rate(
            stack, STORY_COST_RATE, STORY_COST_S / (2 if quick else 1), 1, idle=idle
        )
    per_story = figure["cpu_ms_per_story"]
    figure["tokens_per_chunk"] = CHUNK_TOKENS
    figure["alone_ms"] = alone_ms
    figure["gateway_ms_per_story"] = per_story.get("gateway", 0.0)
    figure["enhancer_ms_per_story"] = round(
        sum(v for role, v in per_story.items() if role.startswith("enhancer")), 3
    )
    _show(figure)
    return figure


async def _throughput(env: dict[str, str], enhancers: int, quick: bool) -> dict[str, Any]:
    """Short stories at each rate of ``THROUGHPUT_RATES`` in turn, each on a fresh stack,
    until completions no longer keep up."""
    steps = []
    for rate in THROUGHPUT_RATES[:2] if quick else THROUGHPUT_RATES:
        async with _story_stack(env, enhancers, THROUGHPUT_WORDS) as (stack, idle, alone_ms):
            step = await measure.story_rate(
                stack,
                rate,
                THROUGHPUT_S / (2 if quick else 1),
                THROUGHPUT_WORDS,
                idle=idle,
                drain_s=max(10.0, 3 * alone_ms / 1000),
            )
        growth = step["lag_growth_ms"]
        step["alone_ms"] = alone_ms
        step["kept_up"] = (
            step["completed"] == step["stories"]
            and set(step["statuses"]) <= {"completed"}
            and growth is not None
            and growth <= THROUGHPUT_GROWTH_MS
            and step["lag_ms"].get("p99", 1e9) <= THROUGHPUT_LAG_X * alone_ms
        )
        steps.append(step)
        _show(step)
        if not step["kept_up"]:
            break
    kept = [s for s in steps if s["kept_up"]]
    best = max(kept, key=lambda s: s["rate"], default=None)
    return {
        "words": THROUGHPUT_WORDS,
        "tokens_per_chunk": CHUNK_TOKENS,
        "growth_bound_ms": THROUGHPUT_GROWTH_MS,
        "lag_bound_x": THROUGHPUT_LAG_X,
        "steps": steps,
        "sustained_rate": best["rate"] if best else 0.0,
        "completions_per_s": best["completions_per_s"] if best else 0.0,
        "pipeline_ms_per_story": best["pipeline_ms_per_story"] if best else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer, smaller runs")
    parser.add_argument(
        "--only",
        help=f"comma-separated figures to run, of {', '.join(FIGURES)} "
        f"(prints them and their rows of the table; writes results files only with --save; "
        f"{', '.join(sorted(ONLY_ASKED))} only when named here)",
    )
    parser.add_argument(
        "--levels",
        help="comma-separated stream counts for token_latency and token_latency_chunked",
    )
    parser.add_argument(
        "--held",
        action="append",
        default=[],
        metavar="CHUNK=LEVEL,...",
        help="a held series to run, its tokens a chunk and stream counts (e.g. 8=500); "
        "all of HELD_LEVELS when not given",
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
    parser.add_argument(
        "--save",
        metavar="NAME",
        help="a partial run's results also written to results/<date>-NAME.json and .md",
    )
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    only = set(args.only.split(",")) if args.only else None
    if only is not None and (unknown := only - set(FIGURES)):
        parser.error(f"unknown figures: {', '.join(sorted(unknown))}")
    levels = [int(x) for x in args.levels.split(",")] if args.levels else None
    held = {
        int(chunk): [int(x) for x in streams.split(",")]
        for chunk, streams in (item.split("=", 1) for item in args.held)
    }
    partial = only is not None or levels is not None or args.no_baselines or bool(env)
    partial = partial or bool(held)
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
            held=held or None,
        )
    )
    if partial:
        print(json.dumps(results, indent=2))
        print(report.markdown(results))
        if args.save:
            stem = RESULTS / f"{datetime.now(UTC):%Y-%m-%d}-{args.save}"
            stem.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
            stem.with_suffix(".md").write_text(report.markdown(results))
            print(f"written: {stem}.json, .md")
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
