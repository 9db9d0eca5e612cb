"""Gateway throughput with aiohttp vs httpx as its client to model_api (issue 3).

Starts Redis, model_api (mnist) and one gateway process per client, warms the cache with
one image, then drives each target in turn, interleaved over several rounds, with
bench/loadgen.py in its own process. Run from the repo root:

    PYTHONPATH=. .venv/bin/python -m bench.gateway_client            # full run, saves results
    PYTHONPATH=. .venv/bin/python -m bench.gateway_client --quick    # a short smoke run
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

import httpx

from harness.redis_server import RedisServer, free_port
from harness.services import ServiceProcess, model_api_process

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "gateway_client.json"
IMAGE = ROOT / "models" / "mnist" / "samples" / "0_rgb_200.png"
GATEWAYS = {"aiohttp": "web_api", "httpx": "bench.httpx_gateway"}
"""Variant name -> the module that serves it (`web_api` is the production gateway)."""
DIRECT = "model_api direct"
PACKAGES = ("fastapi", "starlette", "uvicorn", "uvloop", "httptools")
PACKAGES += ("aiohttp", "httpx", "httpcore", "anyio", "h11")
QUIET = {"MLSERVE_LOG_LEVEL": "warning"}
"""No access log lines in any service: the benchmark measures the client, not logging."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5, help="runs per variant, interleaved")
    parser.add_argument("--image", type=Path, default=IMAGE)
    parser.add_argument("--out", type=Path, help=f"results file (default {RESULTS.name})")
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s, saves nothing")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.warmup, args.rounds = 3.0, 1.0, 1
    elif args.out is None:
        args.out = RESULTS
    return args


def gateway_process(module: str, model_api_url: str, log: Path) -> ServiceProcess:
    """One gateway (`python -m <module>`) on a free port, forwarding to `model_api_url`."""
    port = free_port()
    env = {"MLSERVE_WEB_PORT": str(port), "MLSERVE_MODEL_API_URL": model_api_url, **QUIET}
    return ServiceProcess(module, env, f"http://127.0.0.1:{port}/health/live", log)


def measure(url: str, args: argparse.Namespace) -> dict:
    """One load run against `url` in a separate process; its JSON figures."""
    argv = [sys.executable, "-m", "bench.loadgen", url, str(args.image)]
    argv += ["--concurrency", str(args.concurrency)]
    argv += ["--duration", str(args.duration), "--warmup", str(args.warmup)]
    done = subprocess.run(
        argv,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=args.warmup + args.duration + 60,
    )
    return json.loads(done.stdout)


def summarise(runs: dict[str, list[dict]]) -> dict:
    """Median figures per variant and the paired httpx/aiohttp throughput ratio."""
    summary = {
        name: {
            "rps": statistics.median(r["rps"] for r in results),
            "p50_ms": statistics.median(r["p50_ms"] for r in results),
            "p99_ms": statistics.median(r["p99_ms"] for r in results),
            "errors": sum(r["errors"] for r in results),
        }
        for name, results in runs.items()
    }
    ratios = [h["rps"] / a["rps"] for h, a in zip(runs["httpx"], runs["aiohttp"], strict=True)]
    return {
        "variants": summary,
        "httpx_over_aiohttp_per_round": ratios,
        "httpx_over_aiohttp": statistics.median(ratios),
    }


def machine_info() -> dict:
    """What the figures depend on."""
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "loadavg_at_start": os.getloadavg(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": {name: importlib.metadata.version(name) for name in PACKAGES},
    }


def print_table(summary: dict) -> None:
    print(f"\n{'variant':<18}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for name, figures in summary["variants"].items():
        print(
            f"{name:<18}{figures['rps']:>9.0f}{figures['p50_ms']:>9.1f}"
            f"{figures['p99_ms']:>9.1f}{figures['errors']:>8}"
        )
    per_round = ", ".join(f"{ratio:.2f}" for ratio in summary["httpx_over_aiohttp_per_round"])
    print(f"httpx/aiohttp throughput: {summary['httpx_over_aiohttp']:.2f} (rounds: {per_round})")


def run(args: argparse.Namespace, workdir: Path) -> dict:
    """Start everything, measure the variants interleaved, stop everything."""
    info = machine_info()
    with ExitStack() as stack:
        redis = RedisServer(workdir / "redis").start()
        stack.callback(redis.stop)
        model_api_port = free_port()
        model_api = model_api_process(
            "mnist", model_api_port, redis.url, workdir / "model_api.log", **QUIET
        )
        stack.callback(model_api.stop)
        model_api.start()
        model_api_url = f"http://127.0.0.1:{model_api_port}"
        targets = {DIRECT: f"{model_api_url}/v1/models/mnist/predict?app_type=cli"}
        for name, module in GATEWAYS.items():
            gateway = gateway_process(module, model_api_url, workdir / f"{name}.log")
            stack.callback(gateway.stop)
            gateway.start()
            targets[name] = gateway.health_url.replace("/health/live", "/predict")
        body = args.image.read_bytes()
        for url in targets.values():  # warms the cache, proves every path answers 200
            httpx.post(url, content=body, timeout=30).raise_for_status()
        print(f"started Redis, model_api and {len(GATEWAYS)} gateways; cache warm", flush=True)

        names = list(targets)
        runs: dict[str, list[dict]] = {name: [] for name in names}
        for round_index in range(args.rounds):
            shift = round_index % len(names)  # rotate the order so no variant always goes first
            for name in names[shift:] + names[:shift]:
                result = measure(targets[name], args)
                runs[name].append(result)
                print(
                    f"round {round_index + 1}/{args.rounds} {name:<17} "
                    f"{result['rps']:7.0f} req/s  p50 {result['p50_ms']:6.1f} ms  "
                    f"p99 {result['p99_ms']:6.1f} ms  errors {result['errors']}",
                    flush=True,
                )
    info["loadavg_at_end"] = os.getloadavg()
    settings = {key: getattr(args, key) for key in ("duration", "warmup", "concurrency", "rounds")}
    settings["image"] = os.path.relpath(args.image, ROOT)
    return {"machine": info, "settings": settings, "runs": runs, **summarise(runs)}


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as workdir:
        results = run(args, Path(workdir))
    print_table(results)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        from bench.plot import plot  # noqa: PLC0415 - matplotlib only when saving

        chart = plot(results, args.out.with_suffix(".png"))
        print(f"wrote {args.out.relative_to(ROOT)} and {chart.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
