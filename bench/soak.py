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
import time
from contextlib import ExitStack
from pathlib import Path

import psutil
import redis.asyncio as redis
from redis.exceptions import RedisError

from bench.load.client import Pool
from bench.load.open_loop import Outcome, run_open_loop, send
from bench.soak_mix import Probe, RequestMix, judge, probe_body
from bench.soak_plot import plot
from bench.soak_report import Result, SoakLog, percentile_ms, summarise, table, windows
from harness.redis_server import RedisServer, free_port, redis_executable
from harness.services import ServiceProcess, model_api_process

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "soak.json"
SAMPLES = ROOT / "models" / "mnist" / "samples"
PACKAGES = ("fastapi", "starlette", "uvicorn", "redis", "onnxruntime", "numpy", "pillow")
PROGRESS_SECONDS = 10.0
RSS_SECONDS = 2.0


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
            "MLSERVE_GRPC_PORT": "0",
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


async def pilot(pool: Pool, mix: RequestMix, per_source: int = 3) -> dict[str, list[str]]:
    """Check that mutated samples keep their label; stop checking labels of sources that don't."""
    seen: dict[str, list[str]] = {}
    for source in mix.miss_sources:
        for _ in range(per_source):
            probe = mix.miss(source)
            status, payload, error = await send(pool, source.mutated(probe.serial))
            label = str(json.loads(payload).get("label")) if status == 200 else f"{status} {error}"
            seen.setdefault(source.name, []).append(label)
        source.label_checked = all(label == source.label for label in seen[source.name])
    return seen


def read_rss(pid: int) -> int:
    """VmRSS of `pid` in bytes (0 once the process is gone)."""
    try:
        return psutil.Process(pid).memory_info().rss
    except psutil.Error:
        return 0


async def cache_size(client: redis.Redis) -> tuple[int, int]:
    """(keys, used_memory bytes) of Redis; (-1, -1) when it does not answer."""
    try:
        memory = await client.info("memory")
        return await client.dbsize(), memory["used_memory"]
    except RedisError:
        return -1, -1


async def sample_memory(
    pids: dict[str, int], redis_url: str, start: float, stop: float, log: SoakLog
) -> None:
    """RSS of each service, and what Redis holds, every `RSS_SECONDS` until `stop`.

    Redis's key count and `used_memory` tell its cache filling up apart from a leak.
    """
    client = redis.from_url(redis_url, socket_timeout=1, socket_connect_timeout=1)
    try:
        for _ in range(int((stop - start) / RSS_SECONDS) + 2):
            now = time.monotonic()
            log.rss.append((now - start, {name: read_rss(pid) for name, pid in pids.items()}))
            log.cache.append((now - start, *await cache_size(client)))
            if now >= stop:
                return
            await asyncio.sleep(RSS_SECONDS)
    finally:
        await client.aclose()


async def report_progress(start: float, stop: float, rate: float, log: SoakLog) -> None:
    done = 0
    for _ in range(int((stop - start) / PROGRESS_SECONDS) + 1):
        await asyncio.sleep(PROGRESS_SECONDS)
        now = time.monotonic() - start
        window = log.results[done:]
        done = len(log.results)
        latencies = [r.latency for r in window]
        unexpected = sum(r.unexpected is not None for r in log.results)
        rss = (
            "  ".join(f"{name} {value / 2**20:.0f}M" for name, value in log.rss[-1][1].items())
            if log.rss
            else ""
        )
        print(
            f"[{now:6.0f}s] {done:6d} done  "
            f"{len(window) / PROGRESS_SECONDS:5.1f}/{rate:.0f} req/s  "
            f"p50 {percentile_ms(latencies, 50)} ms  p99 {percentile_ms(latencies, 99)} ms  "
            f"unexpected {unexpected}  RSS {rss}  "
            f"cached keys {log.cache[-1][1] if log.cache else '?'}",
            flush=True,
        )
        if time.monotonic() >= stop:
            return


async def run_soak(
    url: str,
    mix: RequestMix,
    rate: float,
    duration: float,
    pids: dict[str, int],
    redis_url: str,
    timeout: float,
) -> tuple[SoakLog, dict[str, list[str]]]:
    """The open loop of `rate * duration` probes, each answer judged, with RSS and Redis
    sampled alongside; returns the log and the pilot's labels."""
    log = SoakLog()

    def record(probe: Probe, outcome: Outcome) -> None:
        unexpected, cached = judge(probe, outcome.status, outcome.body, outcome.error)
        sent, lag, latency, status = outcome.sent, outcome.lag, outcome.latency, outcome.status
        log.results.append(
            Result(probe.kind, probe.name, sent, lag, latency, status, cached, unexpected)
        )

    pool = Pool(url, "application/octet-stream", timeout)
    try:
        pilot_labels = await pilot(pool, mix)
        start = time.monotonic()
        watchers = [
            asyncio.create_task(sample_memory(pids, redis_url, start, start + duration, log)),
            asyncio.create_task(report_progress(start, start + duration, rate, log)),
        ]
        log.abandoned = await run_open_loop(
            pool, start, rate, duration, mix.next, probe_body, record
        )
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
    finally:
        pool.close()
    return log, pilot_labels


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
