"""Two model_api replicas on one Redis behind a gateway, and a model folder to change: for
the tests and the benchmark of reloads (issue 26)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from harness.images import MODELS_DIR
from harness.redis_server import RedisServer, free_port
from harness.services import ServiceProcess, model_api_process, web_api_process


def copy_models(tmp: Path) -> Path:
    """models/ (without the samples) to change at will."""
    models = tmp / "models"
    shutil.copytree(MODELS_DIR, models, ignore=shutil.ignore_patterns("samples"))
    return models


def set_fit_in_box(models: Path, size: int) -> None:
    """Change one preprocessing parameter of mnist, the weights untouched (the issue's own
    example: 20 -> 10)."""
    path = models / "mnist" / "config.json"
    config = json.loads(path.read_text())
    for step in config["preprocess"]:
        if step["op"] == "fit_in_box":
            step["size"] = size
    path.write_text(json.dumps(config, indent=2))


@dataclass
class TwoReplicas:
    """Two model_api instances (each with its workers) on one Redis, as replicas of one
    service are (the same port, addresses of their own), and a gateway in front of one."""

    models: Path
    redis: RedisServer
    replicas: list[ServiceProcess]
    gateway: ServiceProcess

    def predict_urls(self) -> list[str]:
        """Where a prediction may be asked: the gateway and each replica directly."""
        direct = [r.url + "/v1/models/mnist/predict" for r in self.replicas]
        return [self.gateway.url + "/predict", *direct]

    def load(self) -> httpx.Response:
        """Reload mnist through the gateway (it reaches one replica's one worker)."""
        return httpx.post(self.gateway.url + "/v2/repository/models/mnist/load", timeout=60)


@contextmanager
def two_replicas(tmp: Path) -> Iterator[TwoReplicas]:
    """Start Redis, the replicas on 127.0.0.2 and 127.0.0.3 and the gateway; stop them all."""
    models = copy_models(tmp)
    redis_server = RedisServer(tmp / "redis").start()
    port = free_port()
    replicas = []
    for host in ("127.0.0.2", "127.0.0.3"):
        replica = model_api_process(
            "mnist",
            port,
            redis_server.url,
            tmp / f"model_api_{host}.log",
            MLSERVE_HOST=host,
            MLSERVE_MODELS_DIR=str(models),
        )
        replica.health_url = f"http://{host}:{port}/health/ready"
        replicas.append(replica)
    gateway = web_api_process(
        "mnist",
        free_port(),
        replicas[0].url,
        tmp / "web_api.log",
        MLSERVE_REDIS_URL=redis_server.url,
    )
    try:
        for service in (*replicas, gateway):
            service.start()
        yield TwoReplicas(models, redis_server, replicas, gateway)
    finally:
        for service in (gateway, *replicas):
            service.stop()
        redis_server.stop()
