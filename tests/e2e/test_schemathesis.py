"""Property-based API tests: schemathesis against both services' own OpenAPI schemas.

Real processes (Redis, model_api, the cli gateway); bounded examples; the one check that
matters on a bad day: no generated request gets a 5xx.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.support.redis_server import RedisServer, free_port
from tests.support.services import ServiceProcess, model_api_process

EXAMPLES = settings(
    max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)


@dataclass
class Urls:
    model_api: str
    web_api: str


@pytest.fixture(scope="module")
def running(tmp_path_factory) -> Iterator[Urls]:
    tmp = tmp_path_factory.mktemp("schemathesis")
    redis_server = RedisServer(tmp / "redis").start()
    model_port, web_port = free_port(), free_port()
    model_api = model_api_process("mnist", model_port, redis_server.url, tmp / "m.log")
    web_api = ServiceProcess(
        "web_api",
        {
            "APP_TYPE": "cli",
            "MODEL_NAME": "mnist",
            "MLSERVE_WEB_PORT": str(web_port),
            "MLSERVE_MODEL_API_URL": f"http://127.0.0.1:{model_port}",
        },
        f"http://127.0.0.1:{web_port}/health",
        tmp / "w.log",
    )
    model_api.start()
    web_api.start()
    try:
        yield Urls(f"http://127.0.0.1:{model_port}", f"http://127.0.0.1:{web_port}")
    finally:
        web_api.stop()
        model_api.stop()
        redis_server.stop()


def fuzz(schema_url: str) -> list[str]:
    """Run bounded examples against every operation; the labels of those that passed."""
    schema = schemathesis.openapi.from_url(schema_url)
    checked = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @EXAMPLES
        def no_server_error(case) -> None:
            case.call_and_validate(checks=[not_a_server_error])

        no_server_error()
        checked.append(operation.label)
    return checked


def test_model_api_answers_no_5xx(running: Urls) -> None:
    checked = fuzz(running.model_api + "/openapi.json")
    assert "POST /v1/models/{model_name}/predict" in checked and len(checked) >= 6


def test_web_api_answers_no_5xx(running: Urls) -> None:
    checked = fuzz(running.web_api + "/openapi.json")
    assert "POST /predict" in checked and len(checked) >= 6
