"""Real service processes for the tests: `python -m model_api` / `python -m web_api`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


class ServiceProcess:
    """A service started as its own process, ready once `health_url` answers 200."""

    def __init__(self, module: str, env: dict[str, str], health_url: str, log: Path) -> None:
        self.module, self.health_url, self.log = module, health_url, log
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> ServiceProcess:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(self.health_url, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.module} did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM and wait (graceful); returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code, self.process = self.process.returncode, None
        return code


def model_api_process(
    model: str, port: int, redis_url: str, log: Path, **env: str
) -> ServiceProcess:
    return ServiceProcess(
        "model_api",
        {"MODEL_NAME": model, "MLSERVE_PORT": str(port), "MLSERVE_REDIS_URL": redis_url, **env},
        f"http://127.0.0.1:{port}/health/ready",
        log,
    )
