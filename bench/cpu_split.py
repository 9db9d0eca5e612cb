"""Where a unique-image request's CPU goes: milliseconds of CPU per request, by service.

Starts the stack as a user does (`./start_all.sh cli mnist`, local mode, a new empty Redis),
loads it with wrk and the peers' never-repeated mnist PNGs (32 clients, or `--clients`),
and reads each service's process tree's CPU time around each round. Settings to compare go
on the command line as `VAR=VALUE` sets; the sets take turns, round by round, each on a
fresh stack:

    PYTHONPATH=. .venv/bin/python -m bench.cpu_split                       # the defaults
    PYTHONPATH=. .venv/bin/python -m bench.cpu_split MLSERVE_INLINE_MAX_PIXELS=0 \\
        MLSERVE_INLINE_MAX_PIXELS=4096 --rounds 3                          # an A/B
    PYTHONPATH=. .venv/bin/python -m bench.cpu_split --target web,web-v2   # /predict vs V2

CPU per request moves less than req/s with the machine's other load, so it tells a change's
cost apart from noise in fewer rounds; on a busy shared machine it still moved by 1.5x
between rounds (2026-12-02), so take medians of interleaved pairs. One JSON line per round,
with the gateway's small images per call to model_api (`images_per_call`).
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import httpx

from bench.load.wrk import SliceAllocator, run_wrk
from bench.peers.mlserve_stack import SERVICES, MLServeStack
from bench.peers.pack import WORK_DIR, ensure_pack
from bench.peers.processes import cpu_seconds, process_tree
from bench.peers.targets import MNIST_CAP
from harness.metrics import metric

CLIENTS = 32
TARGETS = {
    "web": ("web", "/predict", "multipart"),
    "web-v2": ("web", "/v2/models/mnist/infer", "v2"),
    "model_api": ("model_api", "/v1/models/mnist/predict?app_type=cli", "multipart"),
}
"""Where a round's load goes: (service, path, body format: bench/peers/wrk.lua's)."""
PER_SECOND = MNIST_CAP
"""Images a round's slice holds per second: above what the stack answers on any machine
seen (a stack that outruns it repeats images, gets cache hits, and the round is refused)."""


def _images_per_call(stack: MLServeStack) -> tuple[float, float]:
    """(small images the gateway forwarded, calls that carried them), from its /metrics."""
    text = httpx.get(stack.base_url("web") + "/metrics", timeout=10).text
    name = "mlserve_gateway_forwarded_images_per_call"
    return metric(text, name + "_sum"), metric(text, name + "_count")


def measure(
    env: dict[str, str], images: SliceAllocator, target: str, seconds: int, clients: int = CLIENTS
) -> dict:
    stack = MLServeStack("mnist", WORK_DIR / "cpu_split")
    stack.env.update(env)
    stack.start()
    try:
        pids = {}
        for service in SERVICES:
            pids[service] = [process.pid for process in process_tree(stack.pid(service))]
        base, path, body = TARGETS[target]
        url = stack.base_url(base) + path
        run_wrk(url, images.take(3 * PER_SECOND), clients, 2, body=body)  # warm-up
        calls_before = _images_per_call(stack)
        before = {service: cpu_seconds(p) for service, p in pids.items()}
        result = run_wrk(url, images.take(seconds * PER_SECOND), clients, seconds, body=body)
        after = {service: cpu_seconds(p) for service, p in pids.items()}
        calls_after = _images_per_call(stack)
    finally:
        stack.stop()
    if result["wrapped"]:
        raise SystemExit(f"images repeated at {result['rps']} req/s: raise MNIST_CAP")
    # per process: a worker that idles while its sibling is saturated shows here
    used = {
        s: [round(after[s][p] - before[s].get(p, 0.0), 2) for p in after[s] if p in before[s]]
        for s in pids
    }
    ms = {s: round(sum(used[s]) * 1000 / max(1, result["ok"]), 3) for s in pids}
    images, calls = (a - b for a, b in zip(calls_after, calls_before, strict=True))
    return {
        "env": env,
        "target": target,
        "clients": clients,
        "rps": result["rps"],
        "failures": result["failures"],
        "cpu_ms_per_request": {**ms, "total": round(sum(ms.values()), 3)},
        "images_per_call": round(images / calls, 2) if calls else None,
        "cpu_s_by_process": {s: [x for x in used[s] if x >= 0.05] for s in used},
        "wrk_cpu": result["wrk_cpu"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "sets", nargs="*", help="settings, one set per argument: VAR=VALUE[,VAR=VALUE...]"
    )
    parser.add_argument(
        "--target",
        default="web",
        help=f"one of {', '.join(TARGETS)}, or several, comma-separated, to take turns",
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--duration", type=int, default=8, help="seconds per round")
    parser.add_argument("--out", type=Path, help="also append the JSON lines to this file")
    args = parser.parse_args()
    targets = args.target.split(",")
    if unknown := set(targets) - set(TARGETS):
        parser.error(f"unknown target(s): {', '.join(sorted(unknown))}")
    sets = [
        dict(pair.split("=", 1) for pair in item.split(",")) for item in args.sets if "=" in item
    ] or [{}]
    per_set = args.rounds * (args.duration + 3) * PER_SECOND
    pack = ensure_pack("mnist", len(sets) * len(targets) * per_set)
    images = SliceAllocator(pack)
    for _ in range(args.rounds):
        for env, target in itertools.product(sets, targets):
            line = json.dumps(measure(env, images, target, args.duration, args.clients))
            print(line, flush=True)
            if args.out is not None:
                with args.out.open("a") as out:
                    out.write(line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
