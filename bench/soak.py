"""Soak benchmark: a fixed request rate through the gateway for ten minutes (hardening issue).

Starts Redis, model_api (mnist) and the web_api gateway as real processes, then sends an
open-loop mix of 60% cache hits, 30% unique misses and 10% bad inputs. Reports unexpected
errors (target 0), p50/p99 latency per class and each service's RSS over time (target:
< 10% growth after warm-up); exits 1 when a target is missed. Run from the repo root:

    PYTHONPATH=. .venv/bin/python -m bench.soak          # 10 min: bench/results/soak.{json,png}
    PYTHONPATH=. .venv/bin/python -m bench.soak --quick  # 30 s smoke run, results in a temp dir
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from bench.soak_load import run_soak
from bench.soak_mix import RequestMix
from bench.soak_plot import plot
from bench.soak_report import summarise, table, windows
from harness.redis_server import RedisServer, free_port, redis_executable
from harness.services import ServiceProcess, model_api_process

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "soak.json"
SAMPLES = ROOT / "models" / "mnist" / "samples"
PACKAGES = ("fastapi", "starlette", "uvicorn", "aiohttp", "redis", "onnxruntime", "numpy", "pillow")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=30.0, help="requests per second (default 30)")
    parser.add_argument(
        "--duration", type=float, default=600.0, help="seconds of load (default 600)"
    )
    parser.add_argument(
        "--warmup", type=float, default=60.0, help="seconds not counted (default 60)"
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="per-request timeout in seconds"
    )
    parser.add_argument(
        "--quick", action="store_true", help="30 s with a 10 s warm-up, results in a temp dir"
    )
    parser.add_argument(
        "--out", type=Path, help=f"results file (default {RESULTS.relative_to(ROOT)})"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup = 30.0, 10.0
        args.out = args.out or Path(tempfile.mkdtemp(prefix="soak-quick-")) / "soak.json"
    args.out = args.out or RESULTS
    if not 0 < args.rate <= 500 or not 0 <= args.warmup < args.duration <= 3600:
        parser.error("need 0 < rate <= 500 and 0 <= warmup < duration <= 3600")
    return args


def machine_info() -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    redis_version = subprocess.run(
        [redis_executable(), "--version"], capture_output=True, text=True
    ).stdout
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    return {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "redis": redis_version.strip(),
        "versions": versions,
        "commit": commit.strip(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "loadavg_before": os.getloadavg(),
    }


def start_stack(stack: ExitStack, workdir: Path) -> tuple[str, dict[str, int], str]:
    """Redis, model_api and the gateway, each stopped when `stack` closes.

    Returns the gateway's predict URL, the pid of each service and Redis's URL.
    """
    redis = RedisServer(workdir / "redis").start()
    stack.callback(redis.stop)
    model_port, web_port = free_port(), free_port()
    model_api = model_api_process("mnist", model_port, redis.url, workdir / "model_api.log").start()
    stack.callback(model_api.stop)
    gateway = ServiceProcess(
        "web_api",
        {
            "APP_TYPE": "cli",
            "MODEL_NAME": "mnist",
            "MLSERVE_WEB_PORT": str(web_port),
            "MLSERVE_MODEL_API_URL": f"http://127.0.0.1:{model_port}",
        },
        f"http://127.0.0.1:{web_port}/health",
        workdir / "web_api.log",
    ).start()
    stack.callback(gateway.stop)
    pids = {
        "redis": redis.process.pid,
        "model_api": model_api.process.pid,
        "web_api": gateway.process.pid,
    }
    return f"http://127.0.0.1:{web_port}/predict", pids, redis.url


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = {k: getattr(args, k) for k in ("rate", "duration", "warmup", "timeout")}
    settings["mix"] = {"hit": 0.6, "miss": 0.3, "bad": 0.1}
    machine = machine_info()
    mix = RequestMix(SAMPLES)
    print(
        f"soak: {args.rate:g} req/s for {args.duration:g} s (warm-up {args.warmup:g} s) "
        f"on {machine['nproc']} cores"
    )
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp, ExitStack() as stack:
        url, pids, redis_url = start_stack(stack, Path(tmp))
        print(f"stack up: {url}  pids {pids}", flush=True)
        log, pilot_labels = asyncio.run(
            run_soak(url, mix, args.rate, args.duration, pids, redis_url, args.timeout)
        )
        machine["loadavg_after"] = os.getloadavg()
        logs = {
            name: (Path(tmp) / f"{name}.log").read_text(errors="replace")[-2000:]
            for name in ("model_api", "web_api")
        }
    figures = summarise(log, args.rate, args.duration, args.warmup)
    results = {
        "settings": settings,
        "machine": machine,
        "pilot": {
            "labels_of_mutated_samples": pilot_labels,
            "label_checked": {s.name: s.label_checked for s in mix.miss_sources},
        },
        "figures": figures,
        "series": {
            "rss": [
                {"t": round(t, 1), "mib": {k: round(v / 2**20, 2) for k, v in sample.items()}}
                for t, sample in log.rss
            ],
            "windows": windows(log, args.duration),
            "redis_cache": [
                {"t": round(t, 1), "keys": keys, "used_memory_mib": round(used / 2**20, 2)}
                for t, keys, used in log.cache
            ],
        },
    }
    if figures["unexpected_errors"]:
        results["log_tails"] = logs
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    png = plot(results, args.out.with_suffix(".png"))
    print(table(figures))
    print(f"\n{'PASS' if figures['passed'] else 'FAIL'}: results in {args.out} and {png}")
    return 0 if figures["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
