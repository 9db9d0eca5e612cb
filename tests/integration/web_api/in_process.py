"""The gateway app in the test's process (a TestClient) in front of a real model_api."""

from __future__ import annotations

from fastapi.testclient import TestClient

from harness.services import ServiceProcess
from web_api.config import Settings
from web_api.gateway.main import create_app


def gateway(model_api: ServiceProcess, **overrides) -> TestClient:
    """The gateway in front of `model_api`, reading its cache as a stack's gateway does."""
    url = model_api.url
    overrides.setdefault("redis_url", model_api.env["MLSERVE_REDIS_URL"])
    overrides.setdefault("grpc_port", 0)  # its lifespan would serve gRPC on 5001 otherwise
    settings = Settings(app_type="cli", model_name="mnist", model_api_url=url, **overrides)
    return TestClient(create_app(settings))
