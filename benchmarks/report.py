"""The benchmark's markdown table and plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _row(name: str, figure: str, baseline: str, target: str, met: bool | None) -> str:
    verdict = "" if met is None else ("met" if met else "NOT met")
    return f"| {name} | {figure} | {baseline} | {target} | {verdict} |"


def _pcts(x: dict[str, Any]) -> str:
    return " / ".join(str(x.get(q, "-")) for q in ("p50", "p95", "p99"))


def markdown(r: dict[str, Any]) -> str:
    lines = [
        f"Benchmark of {r['date']} ({r['machine']}; fake Gemini at {r['tokens_per_s']:g} "
        f"tokens/s per stream, first token {r['first_token_ms']} ms; run took {r['seconds']} s)",
        "",
        "| figure | ours | baseline (same run) | target | |",
        "|---|---|---|---|---|",
    ]
    if "token_latency" in r:
        lines += _latency_rows(r["token_latency"], "")
        held = r["max_streams_p99_under_50ms"]
        lines.append(_row("most streams with p99 < 50 ms", str(held), "", ">= 500", held >= 500))
    if chunked := r.get("token_latency_chunked"):
        n = chunked["tokens_per_chunk"]
        lines += _latency_rows(chunked["levels"], f", {n} tokens a chunk")
        held = chunked["max_streams_p99_under_50ms"]
        lines.append(
            _row(
                f"most streams with p99 < 50 ms, {n} tokens a chunk",
                str(held),
                "",
                ">= 500",
                held >= 500,
            )
        )
    for series in r.get("held_streams", []):
        n = series["tokens_per_chunk"]
        for level in series["levels"]:
            late = " (timed out)" if level["timed_out"] else ""
            lines.append(
                _row(
                    f"added token latency, {level['streams']} streams held, {n} tokens a chunk "
                    f"(started over {level['ramp_s']:g} s; ms p50/p95/p99 over the "
                    f"{level['window_s']:g} s all stream)",
                    f"{_pcts(level)}{late}",
                    "",
                    "",
                    None,
                )
            )
        held = series["max_streams_p99_under_50ms"]
        lines.append(
            _row(
                f"most streams held with p99 < 50 ms, {n} tokens a chunk",
                str(held),
                "",
                ">= 500",
                held >= 500,
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
    if doc:
        lines += _document_cpu_table(doc)
    return "\n".join(lines) + "\n"


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
    """CPU milliseconds per streamed word, by process, for each concurrency level: the
    cost, which a shared machine's wall-clock figures only hint at."""
    levels = [x for x in r.get("token_latency", []) if x["service"].get("cpu_ms_per_word")]
    if not levels:
        return []
    roles = list(levels[0]["service"]["cpu_ms_per_word"])
    lines = [
        "",
        "CPU ms per streamed word, by process (`others`: the rest of the machine meanwhile):",
        "",
        "| streams | " + " | ".join(roles) + " |",
        "|---" * (len(roles) + 1) + "|",
    ]
    for level in levels:
        cost = level["service"]["cpu_ms_per_word"]
        cells = " | ".join(str(cost.get(role, "")) for role in roles)
        lines.append(f"| {level['streams']} | {cells} |")
    return lines


def plot(r: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = [x["streams"] for x in r["token_latency"]]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for series, style in (("service", "-o"), ("kafka_floor", "--s"), ("direct", ":^")):
        for q, alpha in (("p50", 1.0), ("p99", 0.55)):
            values = [x[series].get(q) for x in r["token_latency"]]
            ax.plot(levels, values, style, alpha=alpha, label=f"{series} {q}")
    if chunked := r.get("token_latency_chunked"):
        n = chunked["tokens_per_chunk"]
        for q, alpha in (("p50", 1.0), ("p99", 0.55)):
            ax.plot(
                [x["streams"] for x in chunked["levels"]],
                [x["service"].get(q) for x in chunked["levels"]],
                "-D",
                alpha=alpha,
                label=f"service, {n} tokens a chunk, {q}",
            )
    ax.axhline(50, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xlabel("concurrent streams (30 tokens/s each)")
    ax.set_ylabel("added latency (ms)")
    ax.set_yscale("log")
    ax.set_title("amplify-stream: added token latency vs concurrency")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
