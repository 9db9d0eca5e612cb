"""The soak's figures from its raw log: errors, latency per class, RSS growth, time series."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

KINDS = ("hit", "miss", "bad")
WINDOW_SECONDS = 10.0
RSS_WINDOW_SECONDS = 60.0
"""Growth compares the mean RSS of the first minute after warm-up with that of the last minute."""
RSS_GROWTH_LIMIT = 0.10
EXAMPLES = 10


@dataclass
class Result:
    """One request as seen by the client; `sent` and `lag` are seconds from the start."""

    kind: str
    name: str
    sent: float
    lag: float  # how late the request's task began versus its schedule (the generator keeping up)
    latency: float
    status: int | None
    cached: bool | None
    unexpected: str | None  # why the answer was wrong; None when it was right


@dataclass
class SoakLog:
    """Everything measured during the run, appended to as it happens."""

    results: list[Result] = field(default_factory=list)
    rss: list[tuple[float, dict[str, int]]] = field(default_factory=list)  # (t, {service: bytes})
    cache: list[tuple[float, int, int]] = field(default_factory=list)  # (t, keys, used_memory)
    abandoned: int = 0  # still unanswered when the drain ended


def percentile_ms(latencies: list[float], q: float) -> float | None:
    return round(float(np.percentile(latencies, q)) * 1000, 2) if latencies else None


def class_figures(results: list, kind: str) -> dict:
    chosen = [r for r in results if r.kind == kind]
    answered = [r.latency for r in chosen if r.status is not None]
    return {
        "requests": len(chosen),
        "p50_ms": percentile_ms(answered, 50),
        "p99_ms": percentile_ms(answered, 99),
        "max_ms": percentile_ms(answered, 100),
        "statuses": dict(Counter(str(r.status) for r in chosen)),
        "cached": sum(r.cached is True for r in chosen),
        "unexpected": sum(r.unexpected is not None for r in chosen),
    }


def rss_figures(log: SoakLog, warmup: float, duration: float) -> dict:
    """Per service: start, first post-warm-up minute mean, last minute mean, max, growth."""
    window = min(RSS_WINDOW_SECONDS, (duration - warmup) / 2)
    figures = {}
    for service in log.rss[0][1] if log.rss else {}:
        series = [(t, sample[service]) for t, sample in log.rss]
        first = [v for t, v in series if warmup <= t < warmup + window]
        last = [v for t, v in series if duration - window <= t <= duration + 1]
        first_mean, last_mean = float(np.mean(first)), float(np.mean(last))
        figures[service] = {
            "start_mib": round(series[0][1] / 2**20, 1),
            "after_warmup_mib": round(first_mean / 2**20, 1),
            "end_mib": round(last_mean / 2**20, 1),
            "max_mib": round(max(v for _, v in series) / 2**20, 1),
            "growth": round((last_mean - first_mean) / first_mean, 4),
        }
    return figures


def cache_figures(log: SoakLog, warmup: float, duration: float) -> dict:
    """Redis's keys and used_memory after warm-up and at the end: how much growth is data."""
    window = min(RSS_WINDOW_SECONDS, (duration - warmup) / 2)
    first = [(k, m) for t, k, m in log.cache if warmup <= t < warmup + window and k >= 0]
    last = [(k, m) for t, k, m in log.cache if duration - window <= t <= duration + 1 and k >= 0]
    if not first or not last:
        return {}
    keys = [float(np.mean([k for k, _ in part])) for part in (first, last)]
    used = [float(np.mean([m for _, m in part])) for part in (first, last)]
    added = keys[1] - keys[0]
    return {
        "keys_after_warmup": round(keys[0]),
        "keys_end": round(keys[1]),
        "used_memory_after_warmup_mib": round(used[0] / 2**20, 2),
        "used_memory_end_mib": round(used[1] / 2**20, 2),
        "used_memory_bytes_per_added_key": round((used[1] - used[0]) / added) if added else None,
    }


def judge_growth(rss: dict, cache: dict) -> dict:
    """Growth that counts against the limit, per service.

    For Redis, the cache's own data (its used_memory) is subtracted: stored predictions are
    the service working, bounded by maxmemory, not a leak. The Python services count whole.
    """
    judged = {service: f["growth"] for service, f in rss.items()}
    if "redis" in rss and cache:
        data_mib = cache["used_memory_end_mib"] - cache["used_memory_after_warmup_mib"]
        f = rss["redis"]
        beyond = (f["end_mib"] - f["after_warmup_mib"] - data_mib) / f["after_warmup_mib"]
        judged["redis"] = round(beyond, 4)
    return judged


def windows(log: SoakLog, duration: float) -> list[dict]:
    """Latency and errors per `WINDOW_SECONDS` of send time."""
    rows = []
    for index in range(int(np.ceil(duration / WINDOW_SECONDS))):
        begin = index * WINDOW_SECONDS
        chosen = [r for r in log.results if begin <= r.sent < begin + WINDOW_SECONDS]
        answered = [r.latency for r in chosen if r.status is not None]
        rows.append(
            {
                "t": begin,
                "requests": len(chosen),
                "p50_ms": percentile_ms(answered, 50),
                "p99_ms": percentile_ms(answered, 99),
                "unexpected": sum(r.unexpected is not None for r in chosen),
            }
        )
    return rows


def summarise(log: SoakLog, rate: float, duration: float, warmup: float) -> dict:
    """The figures (over the time after warm-up) and the pass/fail verdict."""
    measured = [r for r in log.results if r.sent >= warmup]
    unexpected = [r for r in log.results if r.unexpected is not None]
    answered_after_warmup = sum(r.status is not None for r in measured)
    rss = rss_figures(log, warmup, duration)
    unexpected_count = len(unexpected) + log.abandoned
    cache = cache_figures(log, warmup, duration)
    judged = judge_growth(rss, cache)
    worst_growth = max(judged.values(), default=0.0)
    return {
        "passed": unexpected_count == 0 and worst_growth < RSS_GROWTH_LIMIT,
        "unexpected_errors": unexpected_count,
        "unexpected_examples": [
            {"t": round(r.sent, 2), "kind": r.kind, "name": r.name, "why": r.unexpected}
            for r in unexpected[:EXAMPLES]
        ],
        "unexpected_reasons": dict(Counter(r.unexpected.split(":")[0] for r in unexpected)),
        "abandoned": log.abandoned,
        "requests": len(log.results),
        "achieved_rps": round(answered_after_warmup / (duration - warmup), 2),
        "send_lag_p99_ms": percentile_ms([r.lag for r in measured], 99),
        "classes": {kind: class_figures(measured, kind) for kind in KINDS},
        "rss": rss,
        "redis_cache": cache,
        "judged_growth": judged,
        "rss_growth_limit": RSS_GROWTH_LIMIT,
    }


def row(cells: list) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def table(figures: dict) -> str:
    """The summary as a Markdown table block."""
    lines = [
        f"unexpected errors: {figures['unexpected_errors']}   "
        f"achieved rate: {figures['achieved_rps']} req/s"
        f"   send lag p99: {figures['send_lag_p99_ms']} ms",
        "",
        "| class | requests | p50 ms | p99 ms | max ms | statuses | unexpected |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for kind, f in figures["classes"].items():
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(f["statuses"].items()))
        cells = [
            kind,
            f["requests"],
            f["p50_ms"],
            f["p99_ms"],
            f["max_ms"],
            statuses,
            f["unexpected"],
        ]
        lines.append(row(cells))
    lines += [
        "",
        "| service | RSS start MiB | after warm-up MiB | end MiB | max MiB | growth | judged |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    judged = figures.get("judged_growth", {})
    for service, f in figures["rss"].items():
        cells = [service, f["start_mib"], f["after_warmup_mib"], f["end_mib"], f["max_mib"]]
        verdict = judged.get(service, f["growth"])
        lines.append(row([*cells, f"{f['growth']:+.1%}", f"{verdict:+.1%}"]))
    cache = figures.get("redis_cache")
    if cache:
        lines += [
            "",
            f"Redis cache: {cache['keys_after_warmup']} -> {cache['keys_end']} keys, used_memory "
            f"{cache['used_memory_after_warmup_mib']} -> {cache['used_memory_end_mib']} MiB "
            f"({cache['used_memory_bytes_per_added_key']} bytes per added key)",
        ]
    return "\n".join(lines)
