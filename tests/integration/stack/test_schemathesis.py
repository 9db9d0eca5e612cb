"""Property-based API tests: schemathesis against both services' own OpenAPI schemas.

Real processes (Redis, model_api, the cli gateway); bounded examples; the one check that
matters on a bad day: no generated request gets a 5xx.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from harness.services import RunningServices, running_services

EXAMPLES = settings(
    max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)


@pytest.fixture(scope="module")
def running(tmp_path_factory) -> Iterator[RunningServices]:
    with running_services(tmp_path_factory.mktemp("schemathesis"), "mnist") as services:
        yield services


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


def test_model_api_answers_no_5xx(running: RunningServices) -> None:
    checked = fuzz(running.model_api_url + "/openapi.json")
    assert "POST /v1/models/{model_name}/predict" in checked and len(checked) >= 6


def test_web_api_answers_no_5xx(running: RunningServices) -> None:
    checked = fuzz(running.url + "/openapi.json")
    assert "POST /predict" in checked and len(checked) >= 6
