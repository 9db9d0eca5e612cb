"""Does model_api really use the GPU? Five bounded steps, one JSON report, exit 1 on a failure.

1. the machine: nvidia-smi, onnxruntime's version and providers;
2. parity: both models on CUDA and on the CPU, same random batches, max |diff| <= 1e-3;
3. raw ONNX Runtime throughput per provider, model and batch size;
4. the real model_api (`python -m model_api`, no Redis) serving `--model` (mnist unless
   told) under 64 keep-alive clients posting unique PNGs, for a few MLSERVE_WORKERS values
   (and one CPU run to compare); with `--batching`, each of those runs twice in turn, with
   the model's dynamic batching off and on (its shipped `batching`, or `BATCHING` for a
   model that ships none; every image decoded in a thread so that batches form: an image
   small enough to be worked on the event loop meets an idle batcher and runs alone);
5. everything into --out, and a summary.

`--cpu-smoke` runs the same code without a GPU (the CPU stands in for CUDA, short load), so
that the check itself is tested before it goes to a GPU host.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import ort_bench
import served
from summary import print_summary

from bench.load.closed_loop import LoadPlan, run_load
from harness.model_copies import shipped_batching

ROOT = served.ROOT
MODELS = ["mnist", "leukemia"]
BATCH_SIZES = [1, 32, 256]
BATCHING = {"max_batch_size": 64, "max_queue_delay_ms": 2, "max_queue_size": 1024}
"""`--batching`, for a model that ships no batching of its own (mnist): the batching
bench/results/gpu_batching.md measured."""


class StepTimeout(Exception):
    pass


class Stopped(BaseException):
    """SIGTERM (gpu_check.sh's `timeout`): unwind through the `finally`s, which stop
    model_api and write the report, instead of dying on the spot."""

    @staticmethod
    def on_signal(signum: int, frame) -> None:  # noqa: ANN001
        raise Stopped(f"stopped by signal {signum} (the time limit of gpu_check.sh?)")


@contextlib.contextmanager
def time_limit(seconds: float, what: str):
    """Raise StepTimeout in this (main) thread once `seconds` have passed."""

    def expire(signum, frame):  # noqa: ANN001
        raise StepTimeout(f"{what} took longer than {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.1))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def workers_to_try(args: argparse.Namespace) -> list[int]:
    """--workers, else MLSERVE_(MODEL_API_)WORKERS from the environment, else a sweep."""
    given = (
        args.workers
        or os.environ.get("MLSERVE_MODEL_API_WORKERS")
        or os.environ.get("MLSERVE_WORKERS")
    )
    if given:
        return [int(w) for w in str(given).split(",")]
    return [1, 2] if args.cpu_smoke else [1, 4, 8]


def gpu_utilisation_sampler() -> subprocess.Popen | None:
    with contextlib.suppress(OSError):
        return subprocess.Popen(
            [
                "nvidia-smi",
                "--query-gpu=utilization.gpu,memory.used",
                "--format=csv,noheader,nounits",
                "-lms",
                "250",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
    return None


def gpu_utilisation(sampler: subprocess.Popen | None) -> dict | None:
    if sampler is None:
        return None
    sampler.terminate()
    out, _ = sampler.communicate(timeout=5)
    samples = [[float(v) for v in line.split(",")] for line in out.splitlines() if "," in line]
    if not samples:
        return None
    util = [s[0] for s in samples]
    return {
        "util_mean_pct": round(sum(util) / len(util), 1),
        "util_max_pct": max(util),
        "memory_used_max_mib": max(s[1] for s in samples),
        "samples": len(samples),
    }


class Check:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.gpu = not args.cpu_smoke
        self.candidate = ort_bench.CUDA if self.gpu else ort_bench.CPU
        self.deadline = time.monotonic() + args.time_budget
        self.model = args.model
        shipped = shipped_batching(self.model)
        self.batching = shipped or BATCHING  # --batching: the "on" of the comparison
        self.models_dirs: dict[bool, Path] = {}  # --batching: models/ copies, off and on
        self.failures: list[str] = []
        self.report: dict = {
            "mode": "gpu" if self.gpu else "cpu-smoke",
            "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "host": socket.gethostname(),
            "load_model": self.model,
            "step_seconds": {},
        }

    def fail(self, what: str) -> None:
        self.failures.append(what)
        print(f"FAILED : {what}", flush=True)

    def step(self, name: str, budget_s: float, run) -> object:  # noqa: ANN001
        """Run one step within its budget (and the overall one); a failure is recorded."""
        print(f"== {name}", flush=True)
        budget = min(budget_s, self.deadline - time.monotonic())
        start = time.monotonic()
        result = None
        try:
            if budget <= 1:
                raise StepTimeout("no time left")
            with time_limit(budget, name):
                result = run()
        except Exception as exc:  # noqa: BLE001 - any failure of a step fails the check
            self.fail(f"{name}: {type(exc).__name__}: {exc}")
        self.report["step_seconds"][name] = round(time.monotonic() - start, 1)
        return result

    def environment(self) -> dict:
        info = ort_bench.environment(with_gpu=self.gpu)
        self.report["environment"] = info
        if "error" in info.get("nvidia_smi", {}):
            self.fail(f"nvidia-smi: {info['nvidia_smi']['error']}")
        if self.gpu and ort_bench.CUDA not in info["available_providers"]:
            self.fail(f"onnxruntime offers no CUDA provider: {info['available_providers']}")
        return info

    def parity(self) -> list[dict]:
        rows = ort_bench.parity(MODELS, BATCH_SIZES, self.candidate, self.args.seed)
        self.report["parity"] = rows
        bad = [
            f"{r['model']} b{r['batch']} on {r['provider']}, |diff| {r['max_abs_diff']:.1e}"
            for r in rows
            if not r["ok"]
        ]
        if bad:
            self.fail(
                f"parity (wanted {self.candidate}, |diff| <= {ort_bench.MAX_ABS_DIFF:.0e}): "
                + "; ".join(bad)
            )
        return rows

    def throughput(self) -> list[dict]:
        providers = [ort_bench.CUDA, ort_bench.CPU] if self.gpu else [ort_bench.CPU]
        seconds = 1.0 if self.gpu else 0.3
        self.report["throughput"] = rows = []  # filled as it goes: a timeout keeps them
        ort_bench.throughput(MODELS, BATCH_SIZES, providers, seconds, rows)
        return rows

    def load_runs(self) -> list[tuple[str, int, bool]]:
        """(provider, workers, batched) of every load run, in order."""
        workers = workers_to_try(self.args)
        if self.gpu:
            runs = [("cuda", w) for w in workers] + [("cpu", max(workers))]
        else:
            runs = [("cpu", w) for w in workers]
        batched = (False, True) if self.args.batching else (False,)
        return [(provider, w, b) for provider, w in runs for b in batched]

    def load(self) -> list[dict]:
        self.report["load"] = runs = []
        per_run = self.args.warmup + self.args.duration + 25
        if self.args.batching:
            self.models_dirs = {
                on: served.models_with_batching(self.model, self.batching if on else None)
                for on in (False, True)
            }
        for provider, workers, batched in self.load_runs():
            if time.monotonic() + per_run > self.deadline:
                runs.append(
                    {
                        "provider": provider,
                        "workers": workers,
                        "batching": self.batching if batched else None,
                        "skipped": "no time left",
                    }
                )
                print(f"   skipped {provider} x{workers}: no time left", flush=True)
                continue
            try:
                runs.append(self.load_one(provider, workers, batched))
            except StepTimeout:
                raise
            except Exception as exc:  # noqa: BLE001 - one failed run: record it, try the next
                runs.append({"provider_asked": provider, "workers": workers, "error": str(exc)})
                self.fail(f"model_api {provider} x{workers}: {type(exc).__name__}: {exc}")
        return runs

    def load_one(self, provider: str, workers: int, batched: bool) -> dict:
        args = self.args
        settings = {}
        if self.models_dirs:
            settings["MLSERVE_MODELS_DIR"] = str(self.models_dirs[batched])
        if batched:  # every image through a thread, or a small one meets an idle batcher
            settings["MLSERVE_INLINE_MAX_PIXELS"] = "0"
        row: dict = {
            "provider_asked": provider,
            "workers": workers,
            "batching": self.batching if batched else None,
            "settings": settings,
        }
        wanted = ort_bench.CUDA if provider == "cuda" else ort_bench.CPU
        ready_timeout = 90 if self.gpu else 60
        with served.running_model_api(
            self.model, provider, workers, ready_timeout, settings
        ) as server:
            row["ready"] = server.ready
            row["all_workers_started"] = server.all_workers_started
            if server.ready.get("provider") != wanted:
                self.fail(
                    f"model_api x{workers} runs on {server.ready.get('provider')}, not {wanted}"
                )
            plan = LoadPlan(
                url=f"http://127.0.0.1:{server.port}/v1/models/{self.model}/predict",
                clients=args.clients,
                processes=args.client_processes,
                warmup_s=args.warmup,
                duration_s=args.duration,
                images=args.images,
                seed=args.seed,
                server_pid=server.process.pid,
            )
            sampler = gpu_utilisation_sampler() if self.gpu else None
            try:
                row.update(run_load(plan))
            finally:
                row["gpu"] = gpu_utilisation(sampler)
            runs = served.metric_total(server.port, "mlserve_batch_size_count")
            images = served.metric_total(server.port, "mlserve_batch_size_sum")
            row["session_runs"], row["images_per_run"] = runs, round(images / max(runs, 1), 2)
        print(
            f"   {provider} x{workers}{' batched' if batched else ''}: "
            f"{row['requests_per_s']} req/s, "
            f"p50 {row['latency_ms']['p50']} ms, p99 {row['latency_ms']['p99']} ms, "
            f"errors {row['errors']}, {row['images_per_run']} images per session run",
            flush=True,
        )
        if row["errors"] or row["warmup_failures"] or not row["ok"]:
            self.fail(
                f"model_api {provider} x{workers}: {row['ok']} answers, {row['errors']} errors, "
                f"{row['warmup_failures']} in the warm-up, {row['late_answers']} after the "
                f"window, slowest {row['slowest_ms']:.0f} ms: {row['error_samples'][:2]}"
            )
        return row

    def run(self) -> int:
        start = time.monotonic()
        try:
            self.step("environment", 30, self.environment)
            self.step("parity", 60, self.parity)
            self.step("throughput", 60, self.throughput)
            self.step("load", self.deadline - time.monotonic(), self.load)
        except Stopped as exc:
            self.fail(str(exc))
        finally:
            self.report["failures"] = self.failures
            self.report["passed"] = not self.failures
            self.report["duration_s"] = round(time.monotonic() - start, 1)
            out = Path(self.args.out)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(self.report, indent=2) + "\n")
        print_summary(self.report)
        print(f"report: {out}")
        return 1 if self.failures else 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--cpu-smoke",
        action="store_true",
        help="no GPU: the CPU stands in for CUDA, short load (tests the check)",
    )
    parser.add_argument(
        "--out",
        help="JSON report (default bench/results/gpu_check.json, "
        "with --cpu-smoke .run/gpu_check_cpu_smoke.json)",
    )
    parser.add_argument("--workers", help="MLSERVE_WORKERS values to load, comma-separated")
    parser.add_argument("--duration", type=float, help="measured seconds per load run")
    parser.add_argument("--clients", type=int, help="concurrent keep-alive clients")
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument(
        "--model", choices=MODELS, default="mnist", help="the model model_api serves under load"
    )
    parser.add_argument(
        "--batching",
        action="store_true",
        help="load each run twice in turn: the model's dynamic batching off, and on",
    )
    args = parser.parse_args(argv)
    smoke = args.cpu_smoke
    cores = len(os.sched_getaffinity(0))
    args.out = args.out or str(
        ROOT / (".run/gpu_check_cpu_smoke.json" if smoke else "bench/results/gpu_check.json")
    )
    args.duration = args.duration or (3.0 if smoke else 10.0)
    args.warmup = 1.0 if smoke else 2.0
    args.clients = args.clients or (8 if smoke else 64)
    args.client_processes = max(1, min(4, cores // 4, args.clients))
    args.images = 2000 if smoke else 48000
    args.time_budget = 150 if smoke else 330  # under the 6 minutes scripts/gpu_check.sh allows
    return args


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, Stopped.on_signal)
    sys.exit(Check(parse_args(sys.argv[1:])).run())
