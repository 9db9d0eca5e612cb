"""Medians over rounds, the ratios the project aims at, the table, and the bar chart.

A ratio is taken per round, between measurements of the same round, and its median over
the rounds is reported, so a round in which the whole machine was slow cancels out. A round
can also be slow for one server alone: uvicorn's and BentoML's workers share one listening
socket, and now and then one worker takes most of wrk's connections. So each ratio is also
taken against the denominator's best round (the numerator's median over the best of the
other), and a target is met only if both values reach it.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

# (what, numerator, denominators (the best of them, per round), at least)
RATIOS = [
    ("full stack unique / LitServe best", "mlserve-unique", ("litserve",), 2.0),
    ("full stack unique / BentoML best", "mlserve-unique", ("bentoml", "bentoml-batch"), 3.0),
    ("full stack unique / plain FastAPI 2 workers", "mlserve-unique", ("fastapi-2w",), 0.8),
    ("cache hits / constant-JSON floor 2 workers", "mlserve-hits", ("floor-2w",), 0.4),
    ("cache hits / full stack unique", "mlserve-hits", ("mlserve-unique",), 3.0),
    ("leukemia batching on / off, 64 clients", "leukemia-on-64", ("leukemia-off-64",), 1.3),
    ("V2 infer (binary BYTES) / full stack unique", "mlserve-v2-unique", ("mlserve-unique",), 0.9),
    (
        "gRPC infer (BYTES) / V2 REST infer, unique",
        "mlserve-grpc-unique",
        ("mlserve-v2-unique",),
        0.9,
    ),
    (
        "traced / untraced, unique (the cost of tracing)",
        "mlserve-traced-unique",
        ("mlserve-unique",),
        0.0,
    ),
    ("traced / untraced, cache hits", "mlserve-traced-hits", ("mlserve-hits",), 0.0),
    ("10 % traced / untraced, unique", "mlserve-sampled-unique", ("mlserve-unique",), 0.0),
    # the cache-hit targets, applied to V2 clients too
    ("V2 cache hits / constant-JSON floor 2 workers", "mlserve-v2-hits", ("floor-2w",), 0.4),
    ("V2 cache hits / V2 unique", "mlserve-v2-hits", ("mlserve-v2-unique",), 3.0),
]
# (what, minuend, subtrahend, at most)
DIFFERENCES = [("leukemia p50 at 1 client, on - off (ms)", "leukemia-on-1", "leukemia-off-1", 1.0)]
# service -> largest RSS per process allowed (MB)
RSS_TARGETS = {"model_api": 300, "web_api": 150}


def _by_round(records: list[dict]) -> dict[int, dict[str, dict]]:
    rounds: dict[int, dict[str, dict]] = defaultdict(dict)
    for record in records:
        rounds[record["round"]][record["measurement"]] = record
    return rounds


def medians(records: list[dict]) -> dict[str, dict]:
    """Per measurement: median req/s, p50, p99 over rounds; failures summed; per-round req/s."""
    grouped: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        grouped[record["measurement"]].append(record)
    return {
        name: {
            "clients": rows[0]["clients"],
            "family": rows[0]["family"],
            "rps": round(statistics.median(r["rps"] for r in rows), 1),
            "p50_ms": round(statistics.median(r["p50_ms"] for r in rows), 2),
            "p99_ms": round(statistics.median(r["p99_ms"] for r in rows), 2),
            "failures": sum(r["failures"] for r in rows),
            "repeated_images": any(r["repeated_images"] for r in rows),
            "rps_per_round": [r["rps"] for r in rows],
        }
        for name, rows in grouped.items()
    }


def ratios(records: list[dict]) -> list[dict]:
    """Every ratio and difference whose measurements ran, with per-round values and verdict."""
    rounds = _by_round(records)
    out = []
    for what, top, bottoms, target in RATIOS:
        values, tops, best_below = [], [], 0.0
        for figures in rounds.values():
            below = [figures[b]["rps"] for b in bottoms if b in figures]
            if top in figures and below and max(below) > 0:
                values.append(figures[top]["rps"] / max(below))
                tops.append(figures[top]["rps"])
                best_below = max(best_below, *below)
        if values:
            median = statistics.median(values)
            against_best = statistics.median(tops) / best_below
            verdict = _verdict(what, values, median, f">= {target}", median >= target)
            verdict["against_best_round"] = round(against_best, 3)
            verdict["met"] = verdict["met"] and against_best >= target
            out.append(verdict)
    for what, first, second, limit in DIFFERENCES:
        values = [
            figures[first]["p50_ms"] - figures[second]["p50_ms"]
            for figures in rounds.values()
            if first in figures and second in figures
        ]
        if values:
            median = statistics.median(values)
            out.append(_verdict(what, values, median, f"<= {limit}", median <= limit))
    return out


def _verdict(what: str, values: list[float], median: float, target: str, met: bool) -> dict:
    return {
        "what": what,
        "median": round(median, 3),
        "per_round": [round(v, 3) for v in values],
        "target": target,
        "met": met,
    }


def rss_summary(memory: list[dict]) -> list[dict]:
    """Largest RSS of any one process of model_api and of web_api, over all MLServe starts."""
    out = []
    for service, limit in RSS_TARGETS.items():
        sizes = [
            (p["rss_mb"], entry["target"])
            for entry in memory
            for p in entry["processes"].get(service, [])
        ]
        counts = [len(e["processes"][service]) for e in memory if service in e["processes"]]
        if sizes:
            largest, where = max(sizes)
            out.append(
                {
                    "service": service,
                    "largest_process_mb": largest,
                    "in": where,
                    "processes": max(counts),
                    "target": f"< {limit} MB",
                    "met": largest < limit,
                }
            )
    return out


def print_summary(summary: dict[str, dict], found: list[dict], rss: list[dict]) -> None:
    print(
        f"\n{'config':<20} {'clients':>7} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>9} "
        f"{'failures':>8}  req/s per round"
    )
    for name, row in summary.items():
        rounds = ", ".join(f"{v:.0f}" for v in row["rps_per_round"])
        flag = "  (images repeated)" if row["repeated_images"] else ""
        print(
            f"{name:<20} {row['clients']:>7} {row['rps']:>9.1f} {row['p50_ms']:>8.2f} "
            f"{row['p99_ms']:>9.2f} {row['failures']:>8}  {rounds}{flag}"
        )
    if found:
        print(
            f"\n{'ratio (median of per-round values)':<46} {'value':>7} {'vs best':>7}  "
            f"{'target':<8} verdict"
        )
        for r in found:
            per_round = ", ".join(f"{v:.2f}" for v in r["per_round"])
            best = f"{r['against_best_round']:.2f}" if "against_best_round" in r else "-"
            print(
                f"{r['what']:<46} {r['median']:>7.2f} {best:>7}  {r['target']:<8} "
                f"{'met' if r['met'] else 'MISSED'}  ({per_round})"
            )
    for r in rss:
        print(
            f"RSS {r['service']}: largest process {r['largest_process_mb']:.0f} MB "
            f"({r['processes']} process(es)), target {r['target']}: "
            f"{'met' if r['met'] else 'MISSED'}"
        )


COLOURS = {"mlserve": "tab:blue", "peer": "tab:orange", "floor": "tab:gray"}


def plot(summary: dict[str, dict], title: str, path: Path) -> None:
    """Bars: median req/s under load (dots: rounds); beside: p50 at one client."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loaded = [n for n, r in summary.items() if r["clients"] > 1]
    single = [n for n, r in summary.items() if r["clients"] == 1]
    fig, axes = plt.subplots(
        1,
        2 if single else 1,
        figsize=(13 if single else 9, 0.45 * len(loaded) + 1.6),
        gridspec_kw={"width_ratios": [3, 1]} if single else None,
        squeeze=False,
    )
    _bars(axes[0][0], summary, loaded, "rps", "requests/s, median over rounds (dots: rounds)")
    axes[0][0].set_xscale("log")  # the constant-JSON floor is ~10x the rest
    axes[0][0].set_xlim(100, max(r["rps"] for r in summary.values()) * 2)
    if single:
        _bars(axes[0][1], summary, single, "p50_ms", "p50 ms at 1 client")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _bars(ax, summary: dict[str, dict], names: list[str], key: str, label: str) -> None:
    """Horizontal bars of `key` per measurement; for req/s also a dot per round."""
    values = [summary[n][key] for n in names]
    ax.barh(range(len(names)), values, color=[COLOURS[summary[n]["family"]] for n in names])
    for i, name in enumerate(names):
        if key == "rps":
            rounds = summary[name]["rps_per_round"]
            ax.plot(rounds, [i] * len(rounds), "k.", markersize=4)
            ax.text(max(values[i], *rounds) * 1.12, i, f"{values[i]:,.0f}", va="center", fontsize=8)
        else:
            ax.text(values[i] + 0.03 * max(values), i, f"{values[i]:.2f}", va="center", fontsize=8)
    if key != "rps":
        ax.set_xlim(0, max(values) * 1.3)
    ax.set_yticks(list(range(len(names))), [f"{n} ({summary[n]['clients']})" for n in names])
    ax.invert_yaxis()
    ax.set_xlabel(label)


if __name__ == "__main__":  # redraw: python -m bench.peers.report bench/results/peers.json
    import json
    import sys

    saved = Path(sys.argv[1])
    document = json.loads(saved.read_text())
    plot(document["medians"], document.get("title", saved.stem), saved.with_suffix(".png"))
