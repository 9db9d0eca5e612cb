"""One command, every server: MLServe against plain FastAPI, LitServe and BentoML.

    PYTHONPATH=. .venv/bin/python -m bench.peers --quick   # smoke run, ~3 min, saves nothing
    PYTHONPATH=. .venv/bin/python -m bench.peers           # full run, writes bench/results/

See bench/README.md ("peers") for what is compared and how.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.peers import machine, report
from bench.peers.pack import WORK_DIR, ensure_pack
from bench.peers.processes import ROOT
from bench.peers.rounds import Runner, Settings, images_needed
from bench.peers.targets import all_targets, select
from harness.model_copies import copy_with_batching, shipped_batching

RESULTS = ROOT / "bench" / "results" / "peers.json"
PEER_FAMILIES = {"litserve": "litserve", "bentoml": "bentoml"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.peers", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 round of 3 s (1 s warm-up); results go to bench/.work/ only",
    )
    parser.add_argument("--rounds", type=int, help="rounds (default 3)")
    parser.add_argument("--duration", type=int, help="measured seconds per load (default 10)")
    parser.add_argument("--warmup", type=int, help="warm-up seconds before each (default 2)")
    parser.add_argument("--concurrency", type=int, default=32, help="clients (default 32)")
    parser.add_argument("--only", help="comma-separated target or measurement names")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk -t (default 1)")
    parser.add_argument("--out", type=Path, help=f"JSON path (default {RESULTS.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    quick = args.quick
    args.rounds = args.rounds or (1 if quick else 3)
    args.duration = args.duration or (3 if quick else 10)
    args.warmup = args.warmup or (1 if quick else 2)
    if args.out is None:
        args.out = WORK_DIR / "peers-quick.json" if quick else RESULTS
    return args


def _setup_peer_venvs(names: set[str]) -> None:
    """Create or update the peers' venvs (setup.sh is idempotent and quick when current)."""
    needed = [peer for peer in PEER_FAMILIES if any(n.startswith(peer) for n in names)]
    if needed:
        subprocess.run(["bash", str(Path(__file__).with_name("setup.sh")), *needed], check=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("error: wrk is missing; install it with: apt-get install -y wrk", file=sys.stderr)
        return 1
    only = [n.strip() for n in args.only.split(",")] if args.only else None
    chosen = select(all_targets(), only)
    _setup_peer_venvs({t.name for t, _ in chosen})
    settings = Settings(args.rounds, args.duration, args.warmup, args.concurrency, args.wrk_threads)
    shutil.rmtree(WORK_DIR / "runs", ignore_errors=True)
    packs = {kind: ensure_pack(kind, n) for kind, n in images_needed(chosen, settings).items() if n}
    if any(t.name == "leukemia-off" for t, _ in chosen):
        copy_with_batching(WORK_DIR / "models-nobatch", "leukemia", None)
    started, began = time.monotonic(), datetime.datetime.now(datetime.UTC)
    facts = {"machine": machine.machine(), "versions": machine.versions()}
    total = sum(len(ms) for _, ms in chosen)
    print(
        f"{len(chosen)} servers, {total} loads x {args.rounds} round(s), "
        f"{args.warmup}+{args.duration} s each, {args.concurrency} clients, "
        f"wrk -t{args.wrk_threads}",
        flush=True,
    )
    runner = Runner(packs, settings, WORK_DIR)
    runner.run(chosen)

    summary = report.medians(runner.records)
    found = report.ratios(runner.records)
    rss = report.rss_summary(
        [m for m in runner.memory if m["target"] in ("mlserve", "leukemia-on", "leukemia-off")]
    )
    report.print_summary(summary, found, rss)
    elapsed = time.monotonic() - started
    facts["machine"]["load_average_at_end"] = os.getloadavg()
    title = (
        f"MLServe vs peers, {began:%Y-%m-%d}, {facts['machine']['cores']} cores, "
        f"{args.rounds} round(s) x {args.duration} s, {args.concurrency} clients (wrk)"
    )
    document = {
        "title": title,
        "command": shlex.join(["python", "-m", "bench.peers", *(argv or sys.argv[1:])]),
        "date": began.isoformat(timespec="seconds"),
        "elapsed_s": round(elapsed, 1),
        "settings": vars(settings),
        **facts,
        "leukemia_batching_as_shipped": shipped_batching("leukemia"),
        "targets": {
            t.name: {
                "family": t.family,
                "config": t.config,
                "measurements": {m.name: m.label for m in ms},
            }
            for t, ms in chosen
        },
        "medians": summary,
        "ratios": found,
        "rss": rss,
        "errors": runner.errors,
        "records": runner.records,
        "memory": runner.memory,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=1) + "\n")
    report.plot(summary, title, args.out.with_suffix(".png"))
    print(
        f"\nwrote {args.out} and {args.out.with_suffix('.png').name}; "
        f"took {elapsed / 60:.1f} min; {len(runner.errors)} error(s)"
    )
    return 1 if runner.errors else 0


if __name__ == "__main__":
    sys.exit(main())
