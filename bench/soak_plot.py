"""Two panels from a soak results file: RSS per service over time, latency per 10-s window."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the headless backend
from matplotlib.ticker import FormatStrFormatter, NullFormatter  # noqa: E402


def plot(results: dict, path: Path) -> Path:
    """Write the chart to `path` and return it."""
    settings, figures, series = results["settings"], results["figures"], results["series"]
    warmup = settings["warmup"]
    fig, (rss_ax, latency_ax) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)

    times = [sample["t"] for sample in series["rss"]]
    for service in figures["rss"]:
        growth = figures["rss"][service]["growth"]
        values = [sample["mib"][service] for sample in series["rss"]]
        label = f"{service} ({growth:+.1%} after warm-up)"
        if service == "redis" and figures.get("redis_cache"):
            cache = figures["redis_cache"]
            label += f"\n  cache {cache['keys_after_warmup']} -> {cache['keys_end']} keys"
        rss_ax.plot(times, values, label=label)
    rss_ax.set_ylabel("RSS (MiB)")
    rss_ax.set_ylim(bottom=0)
    rss_ax.legend(loc="center right", fontsize=9)

    windows = [w for w in series["windows"] if w["p50_ms"] is not None]
    mids = [w["t"] + 5 for w in windows]
    latency_ax.plot(mids, [w["p50_ms"] for w in windows], marker=".", label="p50")
    latency_ax.plot(mids, [w["p99_ms"] for w in windows], marker=".", label="p99")
    latency_ax.set_ylabel("latency per 10-s window (ms)")
    latency_ax.set_yscale("log")
    top = max([w["p99_ms"] for w in windows], default=100)
    latency_ax.set_ylim(1, max(100, top * 1.5))  # at least two decades, so ticks read 1, 10, 100
    latency_ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    latency_ax.yaxis.set_minor_formatter(NullFormatter())
    latency_ax.set_xlabel("time since the load started (s)")
    latency_ax.legend(loc="lower right", fontsize=9)

    for ax in (rss_ax, latency_ax):
        ax.axvspan(0, warmup, color="#9e9e9e", alpha=0.25, label="_warm-up")
        ax.grid(alpha=0.3)
    rss_ax.text(
        warmup / 2, rss_ax.get_ylim()[1] * 0.03, "warm-up", ha="center", va="bottom", fontsize=9
    )
    machine = results["machine"]
    fig.suptitle(
        f"Soak: {settings['rate']:.0f} req/s for {settings['duration']:.0f} s "
        f"(60% hits, 30% misses, 10% bad input); achieved {figures['achieved_rps']} req/s; "
        f"unexpected errors: {figures['unexpected_errors']}\n"
        f"{machine['nproc']} cores, Python {machine['python']}, {machine['date'][:10]}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


if __name__ == "__main__":
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results/soak.json")
    print(plot(json.loads(source.read_text()), source.with_suffix(".png")))
