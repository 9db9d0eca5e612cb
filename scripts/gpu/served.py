"""The real model_api as a user starts it (`python -m model_api`), without Redis, on a free
port: start it, wait until every worker has loaded the model, read its readiness, stop it."""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.metrics import metric
from harness.model_copies import PAPER_OPS, copy_with_batching

ROOT = Path(__file__).resolve().parents[2]
WORKER_STARTED = "Application startup complete"  # uvicorn logs it once per worker


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def get_json(port: int, path: str, timeout: float = 2.0) -> tuple[int, dict]:
    status, body = get(port, path, timeout)
    return status, json.loads(body or b"{}")


def metric_total(port: int, name: str) -> float:
    """The sum of every sample of `name` on model_api's /metrics (all labels, all workers)."""
    return metric(get(port, "/metrics", 5.0)[1].decode(), name)


class ModelApi:
    """`python -m model_api` for one model, provider and number of workers."""

    def __init__(
        self, model: str, provider: str, workers: int, log_dir: Path, settings: dict[str, str]
    ) -> None:
        self.model, self.provider, self.workers = model, provider, workers
        self.port = free_port()
        named = "".join(f"-{k}={v}" for k, v in settings.items() if "/" not in v)
        self.log_path = log_dir / f"model_api-{provider}-{workers}w{named}.log"
        self.ready: dict = {}
        self.all_workers_started = False
        env = {k: v for k, v in os.environ.items() if k != "MLSERVE_MODEL_API_WORKERS"}
        env.pop("MLSERVE_MODEL_NAME", None)
        env.update(
            MODEL_NAME=model,
            MLSERVE_EXECUTION_PROVIDER=provider,
            MLSERVE_REDIS_URL="",
            MLSERVE_HOST="127.0.0.1",
            MLSERVE_PORT=str(self.port),
            MLSERVE_WORKERS=str(workers),
            MLSERVE_LOG_LEVEL="info",
            ORT_DISABLE_TELEMETRY="1",
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        )
        env.update(settings)
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "model_api"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: a stuck worker can be killed with it
        )

    def log_tail(self, lines: int = 15) -> str:
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, timeout_s: float) -> None:
        """Wait until /health/ready answers 200 and every worker has logged its start (a late
        worker would get none of the keep-alive clients). If the workers' start lines never
        all show, go on at the deadline with `all_workers_started` False."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"model_api exited with {self.process.returncode}")
            with contextlib.suppress(OSError, ValueError):
                status, body = get_json(self.port, "/health/ready")
                if status == 200:
                    self.ready = body
                    started = self.log_path.read_text(errors="replace").count(WORKER_STARTED)
                    if started >= self.workers:
                        self.all_workers_started = True
                        return
            time.sleep(0.25)
        if not self.ready:
            raise TimeoutError(f"model_api not ready in {timeout_s:.0f} s")

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """SIGTERM (uvicorn drains and stops its workers), then SIGKILL to its group."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self._log.close()
        return self.process.returncode


def models_with_batching(model: str, batching: dict | None) -> Path:
    """A copy of models/ in a new temporary folder, `model`'s config with `batching` (without
    any when None)."""
    dest = Path(tempfile.mkdtemp(prefix="mlserve-gpu-models-")) / "models"
    copy_with_batching(dest, model, batching)
    if importlib.util.find_spec("cv2") is None:
        without_paper_steps(dest / model / "config.json")
    return dest


def without_paper_steps(path: Path) -> None:
    """Drop the steps for photographed paper from a config: the GPU host has no OpenCV (its
    wheel does not fit a copy, scripts/gpu/prepare_extra.sh), and the check measures the
    network and the batching, not those steps."""
    config = json.loads(path.read_text())
    kept = [step for step in config["preprocess"] if step["op"] not in PAPER_OPS]
    if len(kept) < len(config["preprocess"]):
        print(f"{path.parent.name}: no OpenCV here, so served without the paper steps", flush=True)
        config["preprocess"] = kept
        path.write_text(json.dumps(config, indent=2) + "\n")


@contextlib.contextmanager
def running_model_api(
    model: str,
    provider: str,
    workers: int,
    ready_timeout_s: float,
    settings: dict[str, str] | None = None,
):
    """A started, ready model_api, with `settings` (MLSERVE_* variables) on top of the check's;
    stopped on the way out, whatever happened."""
    log_dir = Path(tempfile.mkdtemp(prefix="mlserve-gpu-check-"))
    server = ModelApi(model, provider, workers, log_dir, settings or {})
    try:
        server.wait_ready(ready_timeout_s)
        yield server
    except BaseException:
        print(f"--- model_api log ({server.log_path}) ---\n{server.log_tail()}", flush=True)
        raise
    finally:
        server.stop()
