"""Where a gRPC request's CPU goes, next to V2 REST's: why gRPC unique-image throughput trails
V2 REST on this 2-core machine (bench/README.md, "gRPC").

1. Bare servers, each loaded alone: an empty `grpc.aio` ModelInfer handler (on uvloop, as in
   the gateway) against the constant-JSON floor app under uvicorn, CPU per request of each
   server and of its load generator (bench/load/grpc_loop.py, wrk).
2. The stack as a user starts it, loaded in turns (V2 REST with wrk, gRPC with grpc_loop):
   CPU per request of each service and of the load generator, and images per call from the
   gateway to model_api (how much coalescing happened).

    PYTHONPATH=. .venv/bin/python -m bench.grpc_cost --rounds 2 --seconds 5
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import httpx

from bench.load.closed_loop import process_tree_cpu_s
from bench.load.grpc_loop import run_grpc
from bench.load.wrk import SliceAllocator, run_wrk
from bench.peers.mlserve_stack import MLServeStack
from bench.peers.pack import WORK_DIR, ensure_pack
from bench.peers.processes import free_port
from bench.peers.targets import MNIST_CAP
from harness import ROOT

CLIENTS = 32


async def _empty_grpc_server(port: int) -> None:
    import grpc
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    class Empty(service_pb2_grpc.GRPCInferenceServiceServicer):
        async def ModelInfer(self, request, context):  # noqa: ANN001, ANN202, N802
            return service_pb2.ModelInferResponse(model_name=request.model_name)

    server = grpc.aio.server()
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(Empty(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def _serve_empty_grpc(port: int) -> None:
    import uvloop

    uvloop.run(_empty_grpc_server(port))


def _per_request(pid: int, load) -> tuple[dict, float]:  # noqa: ANN001 - a callable
    before = process_tree_cpu_s(pid)[1]
    figures = load()
    return figures, (process_tree_cpu_s(pid)[1] - before) / max(1, figures["ok"]) * 1e6


def bare(images: SliceAllocator, seconds: int) -> list[dict]:
    grpc_port, http_port = free_port(), free_port()
    servers = {
        "grpc.aio, empty handler": subprocess.Popen(
            [
                sys.executable,
                "-c",
                f"from bench.grpc_cost import _serve_empty_grpc as s; s({grpc_port})",
            ],
            cwd=ROOT,
        ),
        "uvicorn floor app": subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "bench.peers.servers.fastapi_app:floor_app"]
            + ["--port", str(http_port), "--log-level", "warning", "--no-access-log"],
            cwd=ROOT,
        ),
    }
    time.sleep(3)
    loads = {
        "grpc.aio, empty handler": lambda: run_grpc(
            f"127.0.0.1:{grpc_port}", "mnist", images.take(MNIST_CAP * seconds), CLIENTS, seconds
        ),
        "uvicorn floor app": lambda: run_wrk(
            f"http://127.0.0.1:{http_port}/predict",
            images.take(MNIST_CAP * seconds),
            CLIENTS,
            seconds,
            body="v2",
        ),
    }
    rows = []
    try:
        for name, load in loads.items():
            figures, server_us = _per_request(servers[name].pid, load)
            rows.append(
                {
                    "what": name,
                    "rps": figures["rps"],
                    "server_us_per_request": round(server_us),
                    "loadgen_cores": figures["wrk_cpu"],
                    "loadgen_us_per_request": round(figures["wrk_cpu"] / figures["rps"] * 1e6),
                }
            )
    finally:
        for server in servers.values():
            server.terminate()
            server.wait()
    return rows


def stack(images: SliceAllocator, seconds: int, rounds: int) -> list[dict]:
    mlserve = MLServeStack("mnist", WORK_DIR / "grpc_cost")
    mlserve.start()
    rows = []
    try:
        metrics = mlserve.base_url("web") + "/metrics"

        def calls() -> tuple[float, float]:
            lines = httpx.get(metrics).text.splitlines()
            found = {
                line.split()[0]: float(line.split()[1])
                for line in lines
                if line.startswith("mlserve_gateway_forwarded_images_per_call_")
            }
            return (
                found.get("mlserve_gateway_forwarded_images_per_call_sum", 0.0),
                found.get("mlserve_gateway_forwarded_images_per_call_count", 0.0),
            )

        def load(kind: str) -> dict:
            taken = images.take(MNIST_CAP * (seconds + 1))
            if kind == "grpc":
                return run_grpc(mlserve.base_url("grpc"), "mnist", taken, CLIENTS, seconds)
            url = mlserve.base_url("web") + "/v2/models/mnist/infer"
            return run_wrk(url, taken, CLIENTS, seconds, body="v2")

        for _ in range(rounds):
            for kind in ("v2", "grpc"):
                services = {s: mlserve.pid(s) for s in ("web_api", "model_api", "db_api")}
                before = {s: process_tree_cpu_s(pid)[1] for s, pid in services.items()}
                sent_before = calls()
                figures = load(kind)
                sent_after = calls()
                ok = max(1, figures["ok"])
                row = {"what": kind, "rps": figures["rps"], "loadgen_cores": figures["wrk_cpu"]}
                for service, pid in services.items():
                    used = process_tree_cpu_s(pid)[1] - before[service]
                    row[f"{service}_us_per_request"] = round(used / ok * 1e6)
                images_sent = sent_after[0] - sent_before[0]
                call_count = sent_after[1] - sent_before[1]
                row["images_per_call"] = round(images_sent / call_count, 2) if call_count else None
                rows.append(row)
    finally:
        mlserve.stop()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    images = SliceAllocator(
        ensure_pack("mnist", MNIST_CAP * (args.seconds + 1) * (2 * args.rounds + 2))
    )
    for row in [*bare(images, args.seconds), *stack(images, args.seconds, args.rounds)]:
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
