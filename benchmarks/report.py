"""The benchmark's markdown tables and plot: first the targets of issue 15, each against
its baseline (from the same run, or from the results file its cell names), then every
figure in detail. Any figure may be missing
(``--only`` runs a part): its rows say "not run", or are left out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.measure import APART, pipeline

# Issue 15's targets.
TARGET_P99_MS = 50.0
CPU_RATIO_MAX = 2.0
HELD_TARGETS = {1: 100, 8: 500}
GATEWAY_MS_PER_STORY_MAX = 3.0
ENHANCER_MS_PER_STORY_MAX = 10.0
SINGLE_STREAM_RATIO_MAX = 1.5
IDLE_CORES_MAX = 0.05
ACCEPT_PER_CORE_MIN = 300.0
ACCEPT_P99_MS_MAX = 100.0
SAY_P95_MS_MAX = 300.0
NOT_RUN = "not run"
# A baseline measured in another run names where it is kept (file and date) in its cell.
BASELINE_HEAD = "baseline (same run, unless its cell names a file or a commit)"
ROOT = Path(__file__).resolve().parent.parent


def _row(name: str, figure: str, baseline: str, target: str, met: bool | None) -> str:
    verdict = "" if met is None else ("met" if met else "NOT met")
    return f"| {name} | {figure} | {baseline} | {target} | {verdict} |"


def _chunks(n: int) -> str:
    return f"{n} token{'s' if n > 1 else ''} a chunk"


def _pcts(x: dict[str, Any]) -> str:
    return " / ".join(str(x.get(q, "-")) for q in ("p50", "p95", "p99"))


def markdown(r: dict[str, Any]) -> str:
    lines = [
        f"Benchmark of {r['date']} ({r['machine']}; fake Gemini at {r['tokens_per_s']:g} "
        f"tokens/s per stream, first token {r['first_token_ms']} ms; run took {r['seconds']} s)",
        "",
        *_targets(r),
        "",
        "Every figure:",
        "",
        f"| figure | ours | {BASELINE_HEAD} | target | |",
        "|---|---|---|---|---|",
    ]
    if "token_latency" in r:
        lines += _latency_rows(r["token_latency"], "")
        held = r["max_streams_p99_under_50ms"]
        lines.append(_row("most streams all at once with p99 < 50 ms", str(held), "", "", None))
    if chunked := r.get("token_latency_chunked"):
        n = chunked["tokens_per_chunk"]
        lines += _latency_rows(chunked["levels"], f", {n} tokens a chunk")
        held = chunked["max_streams_p99_under_50ms"]
        lines.append(
            _row(
                f"most streams all at once with p99 < 50 ms, {_chunks(n)}",
                str(held),
                "",
                "",
                None,
            )
        )
    for series in r.get("held_streams", []):
        n = series["tokens_per_chunk"]
        for level in series["levels"]:
            late = " (timed out)" if level["timed_out"] else ""
            lines.append(
                _row(
                    f"added token latency, {level['streams']} streams held, {_chunks(n)} "
                    f"(started over {level['ramp_s']:g} s; ms p50/p95/p99 over the "
                    f"{level['window_s']:g} s all stream)",
                    f"{_pcts(level)}{late}",
                    "",
                    "",
                    None,
                )
            )
        held = series["max_streams_p99_under_50ms"]
        want = HELD_TARGETS.get(n)
        lines.append(
            _row(
                f"most streams held with p99 < 50 ms, {_chunks(n)}",
                str(held),
                "",
                f">= {want}" if want else "",
                held >= want if want else None,
            )
        )
    if "first_audio_pipelined" in r and "first_audio_serial" in r:
        pipe, serial = r["first_audio_pipelined"], r["first_audio_serial"]
        lines.append(
            _row(
                "time to first audio, 500 words (ms)",
                f"{pipe['first_audio_ms']} (rewrite done at {pipe['rewrite_done_ms']})",
                f"serial {serial['first_audio_ms']}",
                "<= 1/3 of serial",
                pipe["first_audio_ms"] * 3 <= serial["first_audio_ms"],
            )
        )
    if sug := r.get("suggestions"):
        lines.append(
            _row(
                f"suggestions of {sug['words']} words at {sug['tokens_per_s']:g} tokens/s (ms)",
                f"first {sug['first_suggestion_ms']}, last {sug['last_suggestion_ms']} "
                f"({sug['suggestions']} in all)",
                f"rewrite from {sug['first_delta_ms']} to {sug['rewrite_end_ms']}",
                "first before 1/5 of the rewrite",
                sug["first_suggestion_ms"] is not None
                and sug["first_suggestion_ms"] - sug["first_delta_ms"]
                < (sug["rewrite_end_ms"] - sug["first_delta_ms"]) / 5,
            )
        )
    if doc := r.get("documents"):
        lines += _document_rows(doc)
    if sock := r.get("idle_sockets"):
        lines.append(
            _row(
                f"gateway memory per idle socket ({sock['sockets']} sockets)",
                f"{sock['kib_per_socket']} KiB",
                f"RSS {sock['rss_before_kib']} -> {sock['rss_after_kib']} KiB",
                "<= 64 KiB",
                sock["kib_per_socket"] <= 64,
            )
        )
    if sub := r.get("submit"):
        lines.append(
            _row(
                f"POST /v1/stories at {sub['rate']:g}/s over {sub.get('users', 1)} users "
                "(ms p50/p95/p99)",
                f"{sub['p50']} / {sub['p95']} / {sub['p99']}",
                f"statuses {sub['statuses']}",
                "",
                None,
            )
        )
    lines += _cpu_table(r)
    lines += _held_cpu_table(r)
    lines += _story_tables(r)
    lines += _idle_table(r)
    lines += _accept_table(r)
    if doc:
        lines += _document_cpu_table(doc)
    lines += _soak_table(r.get("soak"))
    if took := r.get("seconds_by_figure"):
        lines += ["", "Seconds by figure: " + "; ".join(f"{k} {v:g}" for k, v in took.items())]
    return "\n".join(lines) + "\n"


def _target(
    target: str, ours: str, baseline: str, ratio: float | None, met: bool | str | None
) -> str:
    verdict = (
        met if isinstance(met, str) else ("" if met is None else ("met" if met else "NOT met"))
    )
    shown = "-" if ratio is None else f"{ratio:.2f}"
    return f"| {target} | {ours} | {baseline} | {shown} | {verdict} |"


def _missing(target: str) -> str:
    return _target(target, NOT_RUN, "", None, NOT_RUN)


def _ratio(ours: float | None, base: float | None) -> float | None:
    return None if ours is None or not base else ours / base


def _targets(r: dict[str, Any]) -> list[str]:
    """Issue 15's targets: ours, the baseline (the same run's, or a file's it names), their
    ratio, met or not."""
    lines = [
        "Targets (issue 15):",
        "",
        f"| target | ours | {BASELINE_HEAD} | ratio | met / not met |",
        "|---|---|---|---|---|",
    ]
    held = {series["tokens_per_chunk"]: series for series in r.get("held_streams", [])}
    for chunk in HELD_TARGETS:
        lines.append(_cpu_target(held.get(chunk), chunk, r.get("tokens_per_s")))
    for chunk, want in HELD_TARGETS.items():
        lines.append(_held_target(held.get(chunk), chunk, want))
    lines += _story_cost_targets(r.get("story_cost"))
    lines.append(_throughput_target(r.get("throughput")))
    lines.append(_accept_target(r.get("accept")))
    lines += _single_stream_targets(r.get("token_latency"))
    lines.append(_idle_target(r.get("idle_stack")))
    lines.append(_documents_target(r.get("documents")))
    lines += _soak_targets(r.get("soak"))
    lines += _say_targets(r.get("say_cross_client"))
    lines += _scale_targets(r.get("scale_gateways"))
    return lines


SCALE_READ_MAX = 1.25
SCALE_CPU_MAX = 1.2
SCALE_RESUME_MAX = 2.0


def _limit_targets(limits: dict[str, Any]) -> list[str]:
    """One user's bursts through 3 gateways (benchmarks/scale_limits.py): admitted exactly
    the limit, where each gateway counting alone would admit up to 3 times it."""
    rows = []
    for kind, label in (("submissions", "stories a minute"), ("edits", "edits a second")):
        name = f"one user through 3 gateways gets exactly the limit, {label}"
        got = limits.get(kind)
        if not got:
            rows.append(_missing(name))
            continue
        sent = got.get("sent", got["admitted"] + got["refused"])
        rows.append(
            _target(
                name,
                f"{got['admitted']} admitted of {sent} sent",
                f"the limit: {got['limit']}",
                _ratio(got["admitted"], got["limit"]),
                got["admitted"] == got["limit"],
            )
        )
    return rows


def _owner_targets(owner: dict[str, Any] | None, before: dict[str, Any] | None) -> list[str]:
    """A documents owner with 50,000 documents opened (benchmarks/owner_memory.py): its RSS
    once all are idle against the stated bound, beside the same owner without eviction in
    the same run; and an edit to a document back from its snapshot acknowledged within
    the live loop's p99 (edits to documents kept in memory, interleaved)."""
    documents = (owner or {}).get("documents", 50_000)
    bound = (owner or {}).get("bound_rss_mib", 256)
    names = (
        f"a documents owner with {documents:,} documents opened, all idle, RSS <= {bound:g} MiB",
        "an edit to a document back from its snapshot, doc.ack p99 <= the live loop's p99",
    )
    if not owner:
        return [_missing(name) for name in names]
    rss = owner["rss_mib"]["after_each_wave"][-1]
    without = (before or {}).get("rss_mib", {}).get("after_each_wave", [None])[-1]
    back, live = owner["ack_ms"]["returning"], owner["ack_ms"]["resident"]
    return [
        _target(
            names[0],
            f"{rss} MiB (at most {owner['most_resident_at_once']:,} in memory at once)",
            f"without eviction: {without} MiB" if without else "without eviction: not run",
            _ratio(rss, bound),
            rss <= bound,
        ),
        _target(
            names[1],
            f"p50 {back['p50']} / p95 {back['p95']} / p99 {back['p99']} ms "
            f"({back['n']} documents, a load {owner.get('load_ms_mean')} ms on average)",
            f"the live loop: p50 {live['p50']} / p95 {live['p95']} / p99 {live['p99']} ms",
            _ratio(back["p99"], live["p99"]),
            back["p99"] <= live["p99"],
        ),
    ]


def _scale_targets(figure: dict[str, Any] | None) -> list[str]:
    """Issue 24 (benchmarks/scale.py): gateways as separate processes, 1 and 4, at the
    same load per gateway; the baseline of each is the same run's other level, or what a
    gateway reading the whole stream topic reads (every record, once per gateway)."""
    names = (
        f"records read by all gateways / produced, 4 gateways, <= {SCALE_READ_MAX:g}",
        f"gateway CPU per relayed word, 4 gateways / 1, <= {SCALE_CPU_MAX:g}",
        f"resume away from the story's home gateway / at home, p50, <= {SCALE_RESUME_MAX:g}",
    )
    if not figure:
        return [_missing(name) for name in names] + _limit_targets({}) + _owner_targets(None, None)
    one, many = figure["levels"][0], figure["levels"][-1]
    rows = [
        _target(
            names[0],
            f"{many['records_read']:g} of {many['records_produced']} records "
            f"({many['gateways']} gateways, {many['streams']} streams)",
            f"{many['gateways']:g}.00: a reader of the whole topic per gateway (before issue 24)",
            many["read_per_produced"],
            many["read_per_produced"] <= SCALE_READ_MAX,
        ),
        _target(
            names[1],
            f"{many['gateway_cpu_ms_per_word']:g} ms a word ({many['words']} words)",
            f"1 gateway: {one['gateway_cpu_ms_per_word']:g} ms a word ({one['words']} words)",
            figure["cpu_per_word_ratio"],
            figure["cpu_per_word_ratio"] <= SCALE_CPU_MAX,
        ),
    ]
    rows += _limit_targets(figure.get("limits") or {})
    rows += _owner_targets(figure.get("owner"), figure.get("owner_without_eviction"))
    resume = figure.get("resume") or {}
    if not resume:
        return [*rows, _missing(names[2])]
    wrong = resume["replays_not_matching"]
    rows.append(
        _target(
            names[2],
            f"away p50 {resume['away_ms']['p50']} / p95 {resume['away_ms']['p95']} ms, "
            f"{wrong} replays lost or repeated an event",
            f"home p50 {resume['home_ms']['p50']} / p95 {resume['home_ms']['p95']} ms",
            resume["away_over_home_p50"],
            resume["away_over_home_p50"] <= SCALE_RESUME_MAX and wrong == 0,
        )
    )
    return rows


SAY_DIRECTIONS = {
    "page_to_editor": "the page's doc.dismiss -> the editor's diagnostics without it",
    "editor_to_page": "the editor's amplify.dismiss -> the page's doc.retracted",
}


def _say_targets(figure: dict[str, Any] | None) -> list[str]:
    """The writer's say across clients on the embedded default (benchmarks/say.py): from
    one client's dismissal to the other client showing it gone, p95 under the target. The
    baseline is the sender's own answer in the same run."""
    target = (figure or {}).get("target_p95_ms", SAY_P95_MS_MAX)
    rows = []
    for direction, label in SAY_DIRECTIONS.items():
        name = f"writer's say across clients, {label}, p95 < {target:g} ms"
        run = (figure or {}).get(direction)
        if not run:
            rows.append(_missing(name))
            continue
        other, own = run["other"], run["own"]
        p95 = other.get("p95")
        errors = f", {len(figure['errors'])} errors" if figure.get("errors") else ""
        rows.append(
            _target(
                name,
                f"p50 {other.get('p50', '-')} / p95 {p95} / max {other.get('max', '-')} ms "
                f"({other.get('n', 0)} dismissals, `serve` on the memory bus{errors})",
                f"the sender's own answer p50 {own.get('p50', '-')} / p95 {own.get('p95', '-')} ms",
                _ratio(p95, target),
                None if p95 is None else p95 < target and not figure.get("errors"),
            )
        )
    return rows


SOAK_NAMES = {
    "memory": "the embedded default (`serve`, memory bus)",
    "kafka": "gateway and workers on Kafka",
}


def _soak_targets(figure: dict[str, Any] | None) -> list[str]:
    """Issue 26: under steady use, each process's RSS at the end within the tolerance of
    its RSS at the minute it is measured from; every edit acknowledged, every story
    completed. The baseline is the run before the work (its own results file)."""
    before: dict[str, Any] = {}
    if figure and (path := ROOT / figure["before_file"]).exists():
        before = json.loads(path.read_text())
    rows = []
    for bus, label in SOAK_NAMES.items():
        run = (figure or {}).get(bus)
        name = (
            f"soak, {label}: RSS at the end within 10% of RSS at minute 3, "
            "every edit acknowledged, every story completed"
        )
        if not run:
            rows.append(_missing(name))
            continue
        rows.append(
            _target(
                name,
                _soak_summary(run),
                _soak_summary(before[bus]) + f" ({figure['before_file']})" if bus in before else "",
                _worst_growth(run) / run["tolerance"],
                bool(run["met"]),
            )
        )
    return rows


def _soak_table(figure: dict[str, Any] | None) -> list[str]:
    """RSS (MiB) of each process of each soak, a row a minute."""
    if not figure:
        return []
    lines: list[str] = []
    for bus, label in SOAK_NAMES.items():
        if not (run := figure.get(bus)):
            continue
        roles = list(run["rss"])
        lines += [
            "",
            f"Soak, {label}: RSS in MiB by minute ({run['writers']} writers at "
            f"{run['keys_per_s']:g} keys/s, a {run['story_words']}-word narrated story every "
            f"{run['story_every_s']:g} s):",
            "",
            "| minute | " + " | ".join(roles) + " |",
            "|---" * (len(roles) + 1) + "|",
        ]
        minute = -1
        for row in run["rss_series"]:
            if int(row["t_s"] // 60) > minute:
                minute = int(row["t_s"] // 60)
                cells = " | ".join(str(row.get(role, "-")) for role in roles)
                lines.append(f"| {row['t_s'] / 60:.1f} | {cells} |")
    return lines


def _worst_growth(run: dict[str, Any]) -> float:
    return max(m["growth_after_level_from"] for m in run["rss"].values())


def _soak_summary(run: dict[str, Any]) -> str:
    minute = run["level_from_s"] / 60
    rss = "; ".join(
        f"{role} {m['start_mib']:g} -> {m['at_level_from_mib']:g} (min {minute:g}) -> "
        f"{m['end_mib']:g} MiB ({m['growth_after_level_from']:+.1%})"
        for role, m in run["rss"].items()
    )
    statuses = run["story_statuses"]
    return (
        f"{rss}; {run['duration_s']:g} s, {run['edits']} edits ({run['unacked']} not acked), "
        f"{statuses.get('completed', 0)} of {run['stories']} stories completed"
    )


def per_record_cost(level: dict[str, Any], chunk: int) -> tuple[dict[str, float], str]:
    """A held level's CPU ms per relayed record by process, and how it was had: per delta
    record counted in the window, or (a run that did not count them) its CPU per word
    times the words a record carries at ``chunk`` tokens a chunk."""
    if "cpu_ms_per_record" in level:
        return level["cpu_ms_per_record"], (
            f"{level['window_deltas']} delta records relayed in the window"
        )
    words = level.get("cpu_ms_per_word", {})
    return {role: round(v * chunk, 3) for role, v in words.items()}, (
        f"per word x {chunk}: records not counted in this run"
    )


# A held window that relayed fewer words than this share of what the streams offered in
# it was not the steady state: the pipeline (or the machine) fell behind.
KEPT_UP_SHARE = 0.9


def behind(level: dict[str, Any], tokens_per_s: float | None) -> str:
    """'' when the level's window relayed what its streams offered, else a note saying how
    much it relayed (its CPU per record is then not the steady cost)."""
    if not tokens_per_s or "window_words" not in level:
        return ""
    offered = level["streams"] * tokens_per_s * level["window_s"]
    if level["window_words"] >= KEPT_UP_SHARE * offered:
        return ""
    return (
        f" (fell behind: {level['window_words']} words relayed in the window of "
        f"{offered:.0f} offered, so not the steady cost)"
    )


def _cpu_target(series: dict[str, Any] | None, chunk: int, tokens_per_s: float | None) -> str:
    """Like for like: the pipeline's CPU per record it relays (a delta record, one chunk of
    the provider's) against the raw round trip's CPU per record, at the same record rate.
    Per word on our side against per record on the raw side would flatter the service by
    the words a record carries."""
    name = (
        f"pipeline CPU per relayed record, {_chunks(chunk)} "
        f"(held streams, while all stream), <= {CPU_RATIO_MAX:g}x the raw aiokafka CPU "
        "per record at the same record rate"
    )
    if not series or not series["levels"]:
        return _missing(name)
    level = series["levels"][-1]
    cost, how = per_record_cost(level, chunk)
    ours = pipeline(cost) if cost else None
    parts = " + ".join(f"{role} {v}" for role, v in cost.items() if role not in APART)
    apart = ", ".join(f"{role} {cost[role]}" for role in APART if role in cost)
    floor = series.get("kafka_floor") or {}
    raw = floor.get("raw_ms_per_record")
    baseline = "no baseline run"
    per_word = ""
    if raw is not None:
        cost_raw = floor["cpu_ms_per_record"]
        baseline = (
            f"{raw} ms per record (client {cost_raw.get('client')} + broker "
            f"{cost_raw.get('kafka', '-')}) at {floor['rate']} records/s"
        )
        if chunk > 1 and (word := level.get("pipeline_ms_per_word")) is not None:
            # The same comparison per word on both sides: a raw record stands for a chunk.
            per_word = f"; per word {word} ms against the raw {round(raw / chunk, 3)}"
    ratio = _ratio(ours, raw)
    late = behind(level, tokens_per_s)
    met: bool | str | None = None if ratio is None else ratio <= CPU_RATIO_MAX
    if late and ratio is not None:
        met = "not measured: fell behind"
    return _target(
        name,
        f"{ours} ms per record ({parts}; {how}) at {level['streams']} streams{per_word}; "
        f"apart: {apart}{late}",
        baseline,
        ratio,
        met,
    )


def _held_target(series: dict[str, Any] | None, chunk: int, want: int) -> str:
    name = (
        f"streams held with added latency p99 < {TARGET_P99_MS:g} ms, {_chunks(chunk)}, >= {want}"
    )
    if not series or not series["levels"]:
        return _missing(name)
    most = series["max_streams_p99_under_50ms"]
    shown = ", ".join(
        f"{x['streams']}: {x.get('p99', '-')}{' (timed out)' if x['timed_out'] else ''}"
        for x in series["levels"]
    )
    floor = series.get("kafka_floor") or {}
    baseline = (
        f"raw round trip p99 {floor['p99']} ms at {floor['rate']} records/s"
        if "p99" in floor
        else ""
    )
    return _target(
        name, f"{most} (p99 ms by streams: {shown})", baseline, most / want, most >= want
    )


def _story_cost_targets(cost: dict[str, Any] | None) -> list[str]:
    names = (
        f"fixed CPU per story, gateway, <= {GATEWAY_MS_PER_STORY_MAX:g} ms",
        f"fixed CPU per story, enhancers, <= {ENHANCER_MS_PER_STORY_MAX:g} ms",
    )
    if not cost:
        return [_missing(name) for name in names]
    how = (
        f"{cost['completed']} of {cost['stories']} one-word stories at {cost['rate']:g}/s, "
        f"{cost['tokens_per_chunk']} tokens a chunk; submit to completed p50 "
        f"{cost['lag_ms'].get('p50', '-')} ms, alone {cost['alone_ms']} ms"
    )
    rows = []
    for name, ours, limit in (
        (names[0], cost["gateway_ms_per_story"], GATEWAY_MS_PER_STORY_MAX),
        (names[1], cost["enhancer_ms_per_story"], ENHANCER_MS_PER_STORY_MAX),
    ):
        rows.append(
            _target(
                name,
                f"{ours} ms ({how})",
                "idle rate subtracted (ratio: of the limit)",
                ours / limit,
                ours <= limit and cost["completed"] == cost["stories"],
            )
        )
    return rows


def _throughput_target(t: dict[str, Any] | None) -> str:
    name = "pipeline throughput: stories completed per second at a sustainable rate"
    if not t:
        return _missing(name)
    steps = ", ".join(
        f"{s['rate']:g}/s {'kept up' if s['kept_up'] else 'fell behind'} "
        f"(p99 {s['lag_ms'].get('p99', '-')} ms)"
        for s in t["steps"]
    )
    return _target(
        name,
        f"{t['sustained_rate']:g}/s of {t['words']}-word stories "
        f"({t['completions_per_s']} completed/s, {t['pipeline_ms_per_story']} ms pipeline "
        f"CPU each); {steps}",
        f"kept up: all complete, no queue building (lag growth <= {t['growth_bound_ms']:g} "
        f"ms), p99 <= {t['lag_bound_x']:g}x a story alone",
        None,
        "reported",
    )


def _accept_target(a: dict[str, Any] | None) -> str:
    """Accept capacity: ``results["accept"]`` from benchmarks/accept.py (keys
    ``per_core_rate``, ``p99_ms``, ``gateway_ms_per_story``, ``levels``)."""
    name = (
        f"accept capacity: POST /v1/stories per gateway core with p99 < "
        f"{ACCEPT_P99_MS_MAX:g} ms, workers paused, >= {ACCEPT_PER_CORE_MIN:g}/s"
    )
    if not a:
        return _missing(name)
    rate, p99 = a.get("per_core_rate"), a.get("p99_ms")
    met = None
    if rate is not None and p99 is not None:
        met = rate >= ACCEPT_PER_CORE_MIN and p99 < ACCEPT_P99_MS_MAX
    return _target(
        name,
        f"{rate}/s per core, p99 {p99} ms, gateway CPU {a.get('gateway_ms_per_story')} ms "
        "per story",
        str(a.get("baseline", "")),
        _ratio(rate, ACCEPT_PER_CORE_MIN),
        met,
    )


def _single_stream_targets(levels: list[dict[str, Any]] | None) -> list[str]:
    rows = []
    one = next((x for x in levels or [] if x["streams"] == 1), None)
    for q in ("p50", "p99"):
        name = (
            f"added latency at a single stream, {q}, <= {SINGLE_STREAM_RATIO_MAX:g}x the "
            "raw round trip's"
        )
        if one is None:
            rows.append(_missing(name))
            continue
        s, f = one["service"], one["kafka_floor"]
        ratio = _ratio(s.get(q), f.get(q))
        rows.append(
            _target(
                name,
                f"{s.get(q, '-')} ms ({s.get('n', 0)} words)",
                f"{f.get(q, '-')} ms ({f.get('n', 0)} records at {f.get('rate', '-')}/s)",
                ratio,
                None if ratio is None else ratio <= SINGLE_STREAM_RATIO_MAX,
            )
        )
    return rows


def _idle_target(idle: dict[str, Any] | None) -> str:
    name = (
        "idle CPU of the whole stack (gateway, a process of every worker role, broker), "
        f"< {IDLE_CORES_MAX:.0%} of a core"
    )
    if not idle:
        return _missing(name)
    cores = idle["cores"]
    parts = ", ".join(f"{role} {v * 100:.2f}" for role, v in cores.items() if role not in APART)
    # A run from before the stack had every role (issue 25) says which it lacked.
    lacking = [role for role in ("projector", "documents") if role not in cores]
    short = f"; without {' and '.join(lacking)}: not the whole stack" if lacking else ""
    return _target(
        name,
        f"{idle['pipeline_cores'] * 100:.2f}% ({parts}) over {idle['seconds']:g} s{short}",
        "(fake Gemini and client apart)",
        idle["pipeline_cores"] / IDLE_CORES_MAX,
        idle["pipeline_cores"] < IDLE_CORES_MAX,
    )


def documents_before(d: dict[str, Any]) -> dict[str, Any]:
    """The documents figure before issue 15: from the results file the figure names
    (``before_file``), labelled with that file and its run's date; or, in a results file
    written before it named one, the numbers it carried (from another run)."""
    if file := d.get("before_file"):
        path = ROOT / file
        if not path.exists():
            return {}
        run = json.loads(path.read_text())
        doc = run["documents"]
        return {
            "run": f"not this run: {file}, {run['date']}",
            "edits_per_s": doc["edits_per_s"],
            "ack_p99_ms": doc["ack_ms"]["p99"],
            "service_cpu_ms_per_edit": doc["service_cpu_ms_per_edit"],
        }
    before = dict(d.get("before", {}))
    if before:
        before["run"] = f"not this run: {before.get('run', 'another run')}"
    return before


def _documents_target(d: dict[str, Any] | None) -> str:
    name = "live documents (edits/s, doc.ack p99) improve on the figure before issue 15"
    if not d:
        return _missing(name)
    before = documents_before(d)
    p99 = d["ack_ms"].get("p99")
    ours = (
        f"{d['edits_per_s']:g} edits/s, doc.ack p99 {p99} ms, "
        f"{d['service_cpu_ms_per_edit']} ms service CPU per edit"
    )
    if not before:
        return _target(name, ours, "", None, None)
    baseline = (
        f"{before['edits_per_s']:g} edits/s, p99 {before['ack_p99_ms']} ms, "
        f"{before['service_cpu_ms_per_edit']} ms per edit ({before['run']})"
    )
    # The edits/s are the writers' offered load: held (within 1%), not raised.
    met = (
        p99 is not None
        and p99 < before["ack_p99_ms"]
        and d["edits_per_s"] >= 0.99 * before["edits_per_s"]
    )
    return _target(name, ours, baseline, _ratio(p99, before["ack_p99_ms"]), met)


def _document_rows(d: dict[str, Any]) -> list[str]:
    """Live documents: keystroke to doc.ack against the raw round trip of the same run,
    and the analysis after the idle time."""
    ack, floor, late = d["ack_ms"], d["kafka_floor"], d["analyzed_after_idle_ms"]
    who = f"{d['writers']} documents typed into at {d['keys_per_s']:g} keys/s"
    ack_met = None
    if "p99" in ack and "p99" in floor:
        ack_met = ack["p99"] <= 3 * floor["p99"] and not d["unacked"]
    misses = f", {d['unacked']} never acknowledged" if d["unacked"] else ""
    errors = f", errors {d['errors']}" if d["errors"] else ""
    if other := d.get("other_work_cores"):
        errors += f"; other work on the machine meanwhile: {other['run']:g} cores"
    return [
        _row(
            f"keystroke to doc.ack, {who} (ms p50/p95/p99)",
            f"{_pcts(ack)} over {d['edits']} edits ({d['edits_per_s']:g}/s){misses}{errors}",
            f"raw aiokafka round trip, acks=all, {floor.get('rate', '?')} records/s: "
            f"{_pcts(floor)}",
            "p99 <= 3x the raw p99",
            ack_met,
        ),
        _row(
            f"last key to doc.analyzed less the {d['idle_ms']} ms idle time, {who} "
            f"in bursts of {d['words_per_burst']} words (ms p50/p95/p99)",
            f"{_pcts(late)} over {late['n']} bursts ({d['superseded']} superseded)",
            "",
            "p99 <= 100 ms",
            "p99" in late and late["p99"] <= 100 and not d["superseded"],
        ),
        _row(
            "service CPU per edit, gateway + documents worker, idle subtracted (ms)",
            str(d["service_cpu_ms_per_edit"]),
            f"raw round trip's client: {floor.get('cpu_ms_per_record', {}).get('client', '-')}"
            " ms per record",
            "",
            None,
        ),
    ]


def _document_cpu_table(d: dict[str, Any]) -> list[str]:
    roles = list(d["cpu_ms_per_edit"])
    idle = d["idle_cpu_s"]
    return [
        "",
        f"Live documents: CPU ms per edit by process, less each one's idle rate (measured "
        f"over {idle['seconds']:g} s with the documents open); `client` is the writers' "
        f"event loop (its lag p99 {d['client_loop_lag_ms'].get('p99', '-')} ms):",
        "",
        "| edits | " + " | ".join(roles) + " |",
        "|---" * (len(roles) + 1) + "|",
        f"| {d['edits']} | " + " | ".join(str(d["cpu_ms_per_edit"][r]) for r in roles) + " |",
    ]


def _latency_rows(levels: list[dict[str, Any]], label: str) -> list[str]:
    lines: list[str] = []
    for level in levels:
        s, f, d = level["service"], level["kafka_floor"], level["direct"]
        met = None
        if level["streams"] == 200:
            met = (
                "p50" in s
                and "p50" in f
                and s["p50"] <= 1.3 * f["p50"]
                and s["p99"] <= 2 * f["p99"]
            )
        late = (
            f" (timed out: {s.get('finished', '?')} of {level['streams']} streams finished)"
            if s.get("timed_out")
            else ""
        )
        lines.append(
            _row(
                f"added token latency, {level['streams']} streams{label} "
                "(ms p50/p95/p99, per word)",
                f"{_pcts(s)}{late}"
                + (f" (per delta {_pcts(s['per_delta'])})" if "per_delta" in s else "")
                + f"; all streams done in {s.get('seconds', '?')} s",
                f"aiokafka floor {_pcts(f)}; direct {_pcts(d)}",
                "p50 <= 1.3x floor, p99 <= 2x floor (at 200)",
                met,
            )
        )
    return lines


def _cpu_table(r: dict[str, Any]) -> list[str]:
    """CPU milliseconds per streamed word, by process, for each level all at once: the
    cost, which a shared machine's wall-clock figures only hint at."""
    rows: list[tuple[str, dict[str, float]]] = []
    series = [(1, r.get("token_latency", []))]
    if chunked := r.get("token_latency_chunked"):
        series.append((chunked["tokens_per_chunk"], chunked["levels"]))
    for chunk, levels in series:
        for level in levels:
            service = level["service"]
            if cost := service.get("cpu_ms_per_record"):
                rows.append((f"{level['streams']} streams, {_chunks(chunk)}, per record", cost))
            elif cost := service.get("cpu_ms_per_word"):
                rows.append((f"{level['streams']} streams, {_chunks(chunk)}, per word", cost))
            if row := _raw_row(level["kafka_floor"]):
                rows.append(row)
    if not rows:
        return []
    return _by_process_table(
        "CPU ms per relayed record all at once (the whole run; each row names its unit: a "
        "delta record, or per word from a run that did not count records), by process, "
        "less each one's idle rate; `pipeline` is gateway, workers and broker "
        "(`fake-gemini`, the load `client` and `others`, the rest of the machine, apart):",
        "level",
        rows,
    )


def _by_process_table(
    title: str, first: str, rows: list[tuple[str, dict[str, float]]]
) -> list[str]:
    """A row of CPU ms by process for each of ``rows``, and the pipeline's sum (a row may
    give its own ``pipeline``: the raw round trip's is its client and broker)."""
    roles: list[str] = []
    for _, cost in rows:
        roles += [role for role in cost if role not in roles and role != "pipeline"]
    lines = [
        "",
        title,
        "",
        f"| {first} | " + " | ".join(roles) + " | pipeline (raw: client + broker) |",
        "|---" * (len(roles) + 2) + "|",
    ]
    for name, cost in rows:
        cells = [str(cost.get(role, "")) for role in roles]
        cells.append(str(cost.get("pipeline", pipeline(cost))))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _raw_row(floor: dict[str, Any]) -> tuple[str, dict[str, float]] | None:
    """The raw round trip's CPU per record; its ``pipeline`` is client and broker."""
    if "cpu_ms_per_record" not in floor:
        return None
    cost = floor["cpu_ms_per_record"] | {"pipeline": floor.get("raw_ms_per_record", "")}
    return f"raw round trip at {floor['rate']}/s, per record", cost


def _held_cpu_table(r: dict[str, Any]) -> list[str]:
    rows: list[tuple[str, dict[str, float]]] = []
    for series in r.get("held_streams", []):
        n = series["tokens_per_chunk"]
        for level in series["levels"]:
            if level.get("cpu_ms_per_word"):
                cost, how = per_record_cost(level, n)
                rows.append((f"{level['streams']} held, {_chunks(n)}, per record ({how})", cost))
        if row := _raw_row(series.get("kafka_floor", {})):
            rows.append(row)
    if not rows:
        return []
    return _by_process_table(
        "CPU ms per relayed record while all held streams stream (the steady cost), by "
        "process, less each one's idle rate; the raw round trip's per record (the same unit):",
        "level",
        rows,
    )


def _story_tables(r: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    rows: list[tuple[str, dict[str, float]]] = []
    if cost := r.get("story_cost"):
        rows.append(
            (f"{cost['stories']} one-word stories at {cost['rate']:g}/s", cost["cpu_ms_per_story"])
        )
    t = r.get("throughput", {})
    steps = t.get("steps", [])
    for step in steps:
        rows.append(
            (f"{step['words']}-word stories at {step['rate']:g}/s", step["cpu_ms_per_story"])
        )
    if rows:
        lines += _by_process_table(
            "CPU ms per story, by process, less each one's idle rate:", "stories", rows
        )
    if steps:
        lines += [
            "",
            f"Pipeline throughput: {steps[0]['words']}-word stories at each rate on a fresh "
            f"stack; kept up when every story completed, the last quarter's lag grew at most "
            f"{t['growth_bound_ms']:g} ms over the first quarter's, and submit to completed "
            f"p99 stayed within {t['lag_bound_x']:g}x a story's time alone:",
            "",
            "| rate /s | stories | completed | statuses | alone ms | submit to completed ms "
            "p50/p95/p99 | lag growth ms | completions /s | pipeline CPU ms per story "
            "| kept up |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for s in steps:
            lines.append(
                f"| {s['rate']:g} | {s['stories']} | {s['completed']} | {s['statuses']} | "
                f"{s['alone_ms']} | {_pcts(s['lag_ms'])} | {s['lag_growth_ms']} | "
                f"{s['completions_per_s']} | {s['pipeline_ms_per_story']} | "
                f"{'yes' if s['kept_up'] else 'no'} |"
            )
    return lines


def _idle_table(r: dict[str, Any]) -> list[str]:
    if not (idle := r.get("idle_stack")):
        return []
    cores = idle["cores"]
    return [
        "",
        f"Idle stack, CPU in % of a core over {idle['seconds']:g} s with no load:",
        "",
        "| " + " | ".join(cores) + " |",
        "|---" * len(cores) + "|",
        "| " + " | ".join(f"{v * 100:.2f}" for v in cores.values()) + " |",
    ]


def _accept_table(r: dict[str, Any]) -> list[str]:
    if not (a := r.get("accept")) or not a.get("steps"):
        return []
    rows = [
        "",
        "POST /v1/stories on a gateway alone (workers paused), by offered rate:",
        "",
        "| offered /s | accepted /s | p50 / p95 / p99 ms | gateway cores | gateway CPU ms per "
        "story | stories per gateway core |",
        "|---|---|---|---|---|---|",
    ]
    for step in a["steps"]:
        rows.append(
            f"| {step['rate']:g} | {step.get('accepted_per_s', '-')} | {_pcts(step)} | "
            f"{step.get('gateway_cores', '-')} | {step.get('gateway_cpu_ms_per_story', '-')} | "
            f"{step.get('accepted_per_core', '-')} |"
        )
    return rows


def plot(r: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    burst = r.get("token_latency", [])
    levels = [x["streams"] for x in burst]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for series, style in (("service", "-o"), ("kafka_floor", "--s"), ("direct", ":^")):
        for q, alpha in (("p50", 1.0), ("p99", 0.55)):
            values = [x[series].get(q) for x in burst]
            ax.plot(levels, values, style, alpha=alpha, label=f"all at once, {series} {q}")
    if chunked := r.get("token_latency_chunked"):
        n = chunked["tokens_per_chunk"]
        for q, alpha in (("p50", 1.0), ("p99", 0.55)):
            ax.plot(
                [x["streams"] for x in chunked["levels"]],
                [x["service"].get(q) for x in chunked["levels"]],
                "-D",
                alpha=alpha,
                label=f"all at once, {n} tokens a chunk, {q}",
            )
    for held in r.get("held_streams", []):
        n = held["tokens_per_chunk"]
        ax.plot(
            [x["streams"] for x in held["levels"]],
            [x.get("p99") for x in held["levels"]],
            "-v",
            linewidth=2,
            label=f"held, {_chunks(n)}, p99",
        )
    ax.axhline(50, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xlabel("concurrent streams (30 tokens/s each)")
    ax.set_ylabel("added latency (ms)")
    ax.set_yscale("log")
    ax.set_title("amplify-stream: added token latency vs concurrency")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
