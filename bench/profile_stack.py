"""py-spy profiles of every worker of the whole stack under unique-image load, at once.

Starts the stack as a user does (`./start_all.sh cli mnist`, local mode, a new empty Redis),
warms it up, then loads :5000 with wrk and the peers' never-repeated mnist PNGs (32 clients,
`/predict` or, with `--v2`, V2 infer; with `--grpc`, gRPC `ModelInfer` from
bench/load/grpc_loop.py) while `py-spy record --format raw --nonblocking
--threads` samples each model_api and web_api worker. Writes one raw file per worker and one
per service (speedscope.app opens them as they are), then prints each service's bucket table
(`bench/profile_summary.py`):

    PYTHONPATH=. .venv/bin/python -m bench.profile_stack --out /tmp/mlserve-stack-profile

Needs wrk and py-spy (`pip install -r bench/requirements.txt`). The samples are wall-clock
samples of threads that were not idle: on two busy cores they include waiting for a core, so
read CPU per request from `bench.cpu_split` or `bench.peers`' `server_cpu_s`, not from them.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from bench.load.grpc_loop import run_grpc
from bench.load.wrk import SliceAllocator, run_wrk
from bench.peers.mlserve_stack import MLServeStack
from bench.peers.pack import WORK_DIR, ensure_pack
from bench.peers.processes import process_tree
from bench.peers.targets import MNIST_CAP
from harness import ROOT

PROFILED = ("model_api", "web_api")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/mlserve-stack-profile"))
    parser.add_argument("--duration", type=int, default=12, help="seconds profiled")
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--v2", action="store_true", help="V2 infer instead of /predict")
    parser.add_argument(
        "--grpc", action="store_true", help="gRPC ModelInfer (bench/load/grpc_loop)"
    )
    args = parser.parse_args()
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    body, path = ("v2", "/v2/models/mnist/infer") if args.v2 else ("multipart", "/predict")
    args.out.mkdir(parents=True, exist_ok=True)
    images = SliceAllocator(ensure_pack("mnist", (args.duration + 6) * MNIST_CAP))
    stack = MLServeStack("mnist", WORK_DIR / "profile_stack")
    stack.start()
    try:
        url = stack.base_url("web") + path

        def run_load(count: int, seconds: int) -> dict:
            if args.grpc:
                return run_grpc(
                    stack.base_url("grpc"), "mnist", images.take(count), args.clients, seconds
                )
            return run_wrk(url, images.take(count), args.clients, seconds, body=body)

        run_load(3 * MNIST_CAP, 2)  # warm-up
        spies = {
            (service, process.pid): subprocess.Popen(
                [
                    py_spy,
                    "record",
                    "--pid",
                    str(process.pid),
                    "--duration",
                    str(args.duration),
                    "--rate",
                    str(args.rate),
                    "--format",
                    "raw",
                    "--nonblocking",
                    "--threads",
                    "-o",
                    str(args.out / f"{service}_{process.pid}.txt"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for service in PROFILED
            for process in process_tree(stack.pid(service))[1:]  # the workers
        }
        load = run_load(args.duration * MNIST_CAP, args.duration)
        for spy in spies.values():
            spy.wait()
    finally:
        stack.stop()
    print(f"{load['rps']:.0f} req/s while profiled, {load['failures']} failures")
    for service in PROFILED:
        merged = args.out / f"{service}.txt"
        merged.write_text(
            "".join(
                (args.out / f"{name}_{pid}.txt").read_text()
                for name, pid in spies
                if name == service and (args.out / f"{name}_{pid}.txt").exists()
            )
        )
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "bench" / "profile_summary.py"),
                str(merged),
                "--rate",
                str(args.rate),
                "--seconds",
                str(args.duration),
                "--title",
                service,
            ],
            check=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
