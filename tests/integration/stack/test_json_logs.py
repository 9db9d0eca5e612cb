"""`MLSERVE_LOG_FORMAT=json`: the gateway and model_api, real processes, write one JSON object
per line, for lifecycle, access and error logs alike; every error line names its request."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from harness.bad_inputs import BAD
from harness.images import samples
from harness.services import RunningServices, running_services

JSON_LOGS = {"MLSERVE_LOG_FORMAT": "json", "MLSERVE_ACCESS_LOG": "true"}
EVERY_LINE = {"time", "level", "service", "pid", "logger", "message"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServices]:
    with running_services(
        tmp_path_factory.mktemp("json-logs"), "mnist", web_api_env=JSON_LOGS, **JSON_LOGS
    ) as services:
        yield services


def records(stack: RunningServices, service: str) -> list[dict]:
    lines = getattr(stack, service).log.read_text().splitlines()
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            pytest.fail(f"{service} wrote a line that is not JSON: {line[:300]!r}")
    return parsed


def settled(stack: RunningServices, service: str, request_ids: set[str]) -> list[dict]:
    """The service's lines once its access lines name every one of `request_ids` (a line is
    written just after its answer is sent), or after 10 s."""
    deadline = time.monotonic() + 10
    while True:
        lines = records(stack, service)
        logged = {line.get("request_id") for line in lines if line["logger"] == "mlserve.access"}
        if request_ids <= logged or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


def test_every_line_is_json_and_every_error_line_names_its_request(stack: RunningServices) -> None:
    answers: dict[str, tuple[str, str, int, str | None]] = {}  # id -> where, method, status, code
    cases = [case for case in BAD if case.only_for in (None, "mnist")]
    for base, where in ((stack.url, "web_api"), (stack.model_api_url, "model_api")):
        path = "/predict" if where == "web_api" else "/v1/models/mnist/predict"
        for case in cases:
            answer = case.send(base, path if case.path == "/predict" else None)
            code = answer.json().get("code") if answer.status_code >= 400 else None
            answers[answer.headers["x-request-id"]] = (where, case.method, answer.status_code, code)
    good = httpx.post(stack.url + "/predict", content=samples("mnist")[0][0].read_bytes())
    assert good.status_code == 200
    answers[good.headers["x-request-id"]] = ("web_api", "POST", 200, None)

    refused = []
    errors = {
        line["request_id"]: line
        for service in ("web_api", "model_api")
        for line in records(stack, service)
        if "code" in line
    }  # a 4xx the gateway passes on is logged where it was made, under the same request id
    for service in ("web_api", "model_api"):
        lines = settled(
            stack, service, {i for i, answer in answers.items() if answer[0] == service}
        )
        assert lines, f"{service} wrote nothing"
        for line in lines:
            assert set(line) >= EVERY_LINE, line
            assert line["service"] == service and isinstance(line["pid"], int)
            if line["level"] in ("warning", "error") or "code" in line:
                assert line.get("request_id"), f"an error line without its request: {line}"
        assert any("startup complete" in line["message"] for line in lines), service

        access = {line["request_id"]: line for line in lines if line["logger"] == "mlserve.access"}
        for request_id, (where, method, status, code) in answers.items():
            if where != service:
                continue
            if request_id not in access:
                refused.append((service, status, code))
                continue
            line = access[request_id]
            assert (line["status"], line["method"]) == (status, method)
            assert line["duration_ms"] >= 0
            if code is not None and status < 500:  # 5xx lines are throttled per code
                assert request_id in errors, (service, method, status, code)
                assert (errors[request_id]["code"], errors[request_id]["status"]) == (code, status)
    assert refused == [], refused

    model_api_lines = records(stack, "model_api")
    served = [line for line in model_api_lines if line.get("model") == "mnist"]
    assert served and all(len(line["digest"]) == 64 for line in served)
