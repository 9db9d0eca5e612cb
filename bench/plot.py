"""Bar chart of a gateway_client results file: req/s per variant, p99 on each bar."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the headless backend


def plot(results: dict, path: Path) -> Path:
    """Write the chart to `path` and return it."""
    variants = results["variants"]
    names = list(variants)
    rps = [variants[name]["rps"] for name in names]
    settings, machine = results["settings"], results["machine"]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    bars = ax.bar(names, rps, color=["#9e9e9e", "#2e7d32", "#c62828"][: len(names)])
    for bar, name in zip(bars, names, strict=True):
        figures = variants[name]
        ax.annotate(
            f"{figures['rps']:.0f} req/s\np99 {figures['p99_ms']:.0f} ms",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            xytext=(0, 3),
            textcoords="offset points",
        )
    ax.set_ylabel("requests / s (median of rounds)")
    ax.set_ylim(0, max(rps) * 1.25)
    ax.set_title(
        f"POST /predict, cached mnist image, c={settings['concurrency']}, "
        f"{settings['rounds']}x{settings['duration']:.0f} s\n"
        f"httpx/aiohttp = {results['httpx_over_aiohttp']:.2f}, "
        f"{machine['nproc']} cores, Python {machine['python']}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


if __name__ == "__main__":
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("bench/results/gateway_client.json")
    print(plot(json.loads(source.read_text()), source.with_suffix(".png")))
