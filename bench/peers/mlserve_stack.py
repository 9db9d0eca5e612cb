"""MLServe as a user starts it: `./start_all.sh cli MODEL` in local mode, `./stop_all.sh`.

Every start gets a new run directory, hence a new, empty Redis. Nothing about workers or
batching is set here: the stack runs with the defaults a user gets. Inherited MLSERVE_*
variables (but MLSERVE_VENV) are dropped for the same reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from bench.peers.processes import ROOT, StartError, free_port, tree_memory

SERVICES = ("model_api", "web_api", "db_api")
DROPPED_ENV = ("REDIS_PASSWORD", "MODEL_NAME", "APP_TYPE")


class MLServeStack:
    """Redis + model_api + web_api on free loopback ports, run from the repo's own scripts."""

    def __init__(self, model: str, run_dir: Path, models_dir: Path | None = None) -> None:
        self.model, self.run_dir, self.models_dir = model, run_dir, models_dir
        self.ports = {
            "web": free_port(),
            "grpc": free_port(),
            "model_api": free_port(),
            "redis": free_port(),
        }
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not (k.startswith("MLSERVE_") and k != "MLSERVE_VENV") and k not in DROPPED_ENV
        }
        self.env.update(
            MLSERVE_MODE="local",
            MLSERVE_RUN_DIR=str(run_dir),
            MLSERVE_WEB_PORT=str(self.ports["web"]),
            MLSERVE_GRPC_PORT=str(self.ports["grpc"]),
            MLSERVE_MODEL_API_PORT=str(self.ports["model_api"]),
            MLSERVE_REDIS_PORT=str(self.ports["redis"]),
        )
        if models_dir is not None:
            self.env["MLSERVE_MODELS_DIR"] = str(models_dir)

    def base_url(self, service: str) -> str:
        """`model_api`'s, the gateway's (`main`), or for `grpc` the gateway's gRPC address."""
        if service == "grpc":
            return f"127.0.0.1:{self.ports['grpc']}"
        port = self.ports["model_api"] if service == "model_api" else self.ports["web"]
        return f"http://127.0.0.1:{port}"

    def start(self, timeout: float = 300.0) -> None:
        shutil.rmtree(self.run_dir, ignore_errors=True)
        done = subprocess.run(
            ["./start_all.sh", "cli", self.model],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            self.stop()
            raise StartError(f"start_all.sh exited {done.returncode}:\n{done.stdout[-3000:]}")

    def stop(self) -> None:
        subprocess.run(["./stop_all.sh"], cwd=ROOT, env=self.env, capture_output=True, timeout=180)

    def pid(self, service: str) -> int:
        """The process `start_all.sh` started for `service` (its workers' supervisor), from
        its pid file (OSError or ValueError when there is none)."""
        return int((self.run_dir / "pids" / f"{service}.pid").read_text())

    def memory(self) -> dict[str, list[dict]]:
        """Per service, every process of its tree (supervisor and workers) with its RSS."""
        facts = {}
        for service in SERVICES:
            try:
                facts[service] = tree_memory(self.pid(service))
            except (OSError, ValueError):
                continue
        return facts


class TracedStack(MLServeStack):
    """The same stack with OpenTelemetry on, exporting to an OTLP sink (bench/otlp_sink.py)
    in a process of its own: what tracing costs. `ratio`: the share of traces sampled."""

    def __init__(self, model: str, run_dir: Path, ratio: float = 1.0) -> None:
        super().__init__(model, run_dir)
        self.ports["otlp"] = free_port()
        self.env.update(
            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{self.ports['otlp']}",
            OTEL_EXPORTER_OTLP_INSECURE="true",
            OTEL_TRACES_SAMPLER="traceidratio",
            OTEL_TRACES_SAMPLER_ARG=str(ratio),
        )
        self.sink: subprocess.Popen | None = None

    def start(self, timeout: float = 300.0) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.sink = subprocess.Popen(
            [
                str(Path(ROOT) / ".venv" / "bin" / "python"),
                "-m",
                "bench.otlp_sink",
                str(self.ports["otlp"]),
            ],
            cwd=ROOT,
            stdout=(self.run_dir.parent / f"{self.run_dir.name}-otlp_sink.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        super().start(timeout)

    def stop(self) -> None:
        super().stop()
        if self.sink is not None:
            self.sink.terminate()
            self.sink.wait(timeout=30)
            self.sink = None
