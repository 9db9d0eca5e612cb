"""Real service processes for the tests: `python -m model_api` / `python -m web_api`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from harness import ROOT
from harness.redis_server import RedisServer, free_port

TEST_WORKERS = 2
"""Worker processes per service in the tests, whatever the machine: the fault and drain tests
prove the multi-process behaviour."""


class ServiceProcess:
    """A service started as its own process, ready once `health_url` answers 200."""

    def __init__(self, module: str, env: dict[str, str], health_url: str, log: Path) -> None:
        self.module, self.health_url, self.log = module, health_url, log
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The service's base URL (its health URL without the path)."""
        parts = urlsplit(self.health_url)
        return f"{parts.scheme}://{parts.netloc}"

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
        {
            "MODEL_NAME": model,
            "MLSERVE_PORT": str(port),
            "MLSERVE_REDIS_URL": redis_url,
            "MLSERVE_WORKERS": str(TEST_WORKERS),
            **env,
        },
        f"http://127.0.0.1:{port}/health/ready",
        log,
    )


def web_api_process(
    model: str, port: int, model_api_url: str, log: Path, **env: str
) -> ServiceProcess:
    return ServiceProcess(
        "web_api",
        {
            "APP_TYPE": "cli",
            "MODEL_NAME": model,
            "MLSERVE_WEB_PORT": str(port),
            "MLSERVE_MODEL_API_URL": model_api_url,
            "MLSERVE_WORKERS": str(TEST_WORKERS),
            "MLSERVE_GRPC_PORT": "0",  # no gRPC unless `env` gives a port (`grpc_env`)
            **env,
        },
        f"http://127.0.0.1:{port}/health",
        log,
    )


@dataclass
class RunningServices:
    """Redis, model_api and the cli gateway as three real processes."""

    redis: RedisServer
    model_api: ServiceProcess
    web_api: ServiceProcess
    model_api_url: str
    url: str
    grpc_target: str | None = None
    """`127.0.0.1:PORT` of the gateway's gRPC front end, when `grpc_env()` gave it one."""


@contextmanager
def running_services(
    tmp: Path, model: str, web_api_env: dict[str, str] | None = None, **model_api_env: str
) -> Iterator[RunningServices]:
    """Start the three services on free ports; stop them all afterwards."""
    redis_server = RedisServer(tmp / "redis").start()
    model_port, web_port = free_port(), free_port()
    model_api_url = f"http://127.0.0.1:{model_port}"
    model_api = model_api_process(
        model, model_port, redis_server.url, tmp / "model_api.log", **model_api_env
    )
    # The gateway reads the cache as it does in a stack started by start_all.sh.
    web_api = web_api_process(
        model,
        web_port,
        model_api_url,
        tmp / "web_api.log",
        **{"MLSERVE_REDIS_URL": redis_server.url, **(web_api_env or {})},
    )
    try:
        model_api.start()
        web_api.start()
        grpc_port = (web_api_env or {}).get("MLSERVE_GRPC_PORT", "0")
        yield RunningServices(
            redis_server,
            model_api,
            web_api,
            model_api_url,
            f"http://127.0.0.1:{web_port}",
            f"127.0.0.1:{grpc_port}" if grpc_port != "0" else None,
        )
    finally:
        web_api.stop()
        model_api.stop()
        redis_server.stop()


def grpc_env() -> dict[str, str]:
    """A gateway's environment for serving gRPC, on a free port (`web_api_process` turns
    gRPC off unless given one)."""
    return {"MLSERVE_GRPC_PORT": str(free_port())}


def slow_client_timeouts(seconds: float) -> dict[str, str]:
    """Both services' head and body timeouts at `seconds`: slow clients are cut off soon."""
    return {
        "MLSERVE_HTTP_HEADER_TIMEOUT_SECONDS": str(seconds),
        "MLSERVE_HTTP_BODY_TIMEOUT_SECONDS": str(seconds),
    }
