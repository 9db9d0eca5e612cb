"""The services' own checks, run the way an operator runs them: `python tests/check_X.py` in
the service's folder, against a real stack, and against one with Redis or model_api down.

tests/docker/test_engine.py runs the same scripts with `docker exec` in the containers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from harness.images import samples
from harness.redis_server import free_port, redis_executable
from harness.services import ROOT, RunningServices, ServiceProcess, running_services
from stackctl.probes import port_in_use

MNIST_SAMPLES = len(samples("mnist"))  # the check classifies every shipped sample

STACK_ENV = (
    "APP_TYPE",
    "MODEL_NAME",
    "MLSERVE_MODELS",
    "MLSERVE_API_KEY",
    "MLSERVE_MODEL_API_URL",
    "MLSERVE_PORT",
    "MLSERVE_REDIS_PORT",
    "MLSERVE_REDIS_URL",
    "MLSERVE_WEB_PORT",
    "PYTHONPATH",
    "REDIS_PASSWORD",
)
"""Left out of a check's environment: each test says what the service's environment holds
(no PYTHONPATH: the scripts find the repository themselves)."""


def run_check(service: str, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python tests/check_<service>.py ARGV` in the service's folder, as the README says."""
    clean = {k: v for k, v in os.environ.items() if k not in STACK_ENV}
    result = subprocess.run(
        [sys.executable, f"tests/check_{service}.py", *argv],
        cwd=ROOT / service,
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = result.stdout.splitlines()
    assert lines, result.stderr
    assert all(line.startswith(("ok: ", "FAIL: ")) for line in lines), result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    return result


def failures(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("FAIL: ")]


def check_model_api(stack: RunningServices, *argv: str) -> subprocess.CompletedProcess[str]:
    return run_check("model_api", "--url", stack.model_api_url, *argv, MODEL_NAME="mnist")


def check_db_api(
    stack: RunningServices, password: str | None = None
) -> subprocess.CompletedProcess[str]:
    password = stack.redis.password if password is None else password
    return run_check("db_api", "--port", str(stack.redis.port), REDIS_PASSWORD=password)


def check_web_api(stack: RunningServices, *argv: str) -> subprocess.CompletedProcess[str]:
    return run_check("web_api", "--url", stack.url, *argv, APP_TYPE="cli")


CHECKS = {"model_api": check_model_api, "db_api": check_db_api, "web_api": check_web_api}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServices]:
    """One model_api worker: the cache state /health/ready reports is that worker's, so a
    Redis outage one prediction ran into is what every later readiness call says."""
    tmp = tmp_path_factory.mktemp("container_checks")
    with running_services(
        tmp, "mnist", MLSERVE_MODEL_API_WORKERS="1", MLSERVE_REDIS_RETRY_SECONDS="0.2"
    ) as services:
        yield services


def cache_state(stack: RunningServices) -> str:
    return httpx.get(f"{stack.model_api_url}/health/ready", timeout=5).json()["cache"]


@contextmanager
def redis_down(stack: RunningServices) -> Iterator[None]:
    """Redis stopped; afterwards started again and model_api's cache back to ok."""
    stack.redis.stop()
    try:
        yield
    finally:
        stack.redis.start()
        deadline = time.monotonic() + 15
        while cache_state(stack) != "ok":
            assert time.monotonic() < deadline, "model_api's cache did not come back"
            time.sleep(0.1)


@contextmanager
def model_api_down(stack: RunningServices) -> Iterator[None]:
    """model_api stopped; afterwards started again (and ready)."""
    stack.model_api.stop()
    try:
        yield
    finally:
        stack.model_api.start()


EXPECTED_WHEN_HEALTHY = {
    "model_api": [
        f"mnist: all {MNIST_SAMPLES} samples classified as labelled",
        "runs on CPUExecutionProvider",
        "is ready: mnist on CPUExecutionProvider",
        "POST /v1/models/mnist/predict answered '0' for 0_rgb_200.png",
        "model_api's cache is ok",
    ],
    "db_api": [
        "refuses commands without the password",
        "Redis answers PONG with the password from REDIS_PASSWORD",
        "SET/GET/DEL round trip",
        "append-only file on",
        "eviction allkeys-lru",
    ],
    "web_api": [
        "the gateway answers",
        "model_api is ready behind the gateway",
        "POST /predict answered '0' for 0_rgb_200.png",
        "the cache is ok",
    ],
}


@pytest.mark.parametrize("service", CHECKS)
def test_each_check_passes_on_a_healthy_stack(stack: RunningServices, service: str) -> None:
    result = CHECKS[service](stack)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not failures(result)
    for expected in EXPECTED_WHEN_HEALTHY[service]:
        assert expected in result.stdout, (expected, result.stdout)


REDIS_DOWN_FAILURES = {
    "db_api": "FAIL: cannot connect to Redis at 127.0.0.1:",
    "model_api": "FAIL: model_api's cache is degraded: model_api cannot reach Redis",
    "web_api": "FAIL: the cache is degraded: model_api cannot reach Redis",
}


@pytest.mark.parametrize("service", CHECKS)
def test_each_check_fails_when_redis_is_down(stack: RunningServices, service: str) -> None:
    with redis_down(stack):
        result = CHECKS[service](stack)
    assert result.returncode == 1, result.stdout
    assert len(failures(result)) == 1, result.stdout
    assert REDIS_DOWN_FAILURES[service] in result.stdout


def test_model_api_down_fails_the_model_api_and_web_api_checks(stack: RunningServices) -> None:
    with model_api_down(stack):
        model_api = check_model_api(stack)
        offline = check_model_api(stack, "--offline")
        web_api = check_web_api(stack)
    assert model_api.returncode == 1
    assert failures(model_api) == [
        f"FAIL: nothing answers at {stack.model_api_url}/health/ready ([Errno 111] Connection "
        "refused): model_api is not running there; start it (./start_all.sh), point --url at "
        "it, or check the models alone with --offline"
    ]
    assert f"mnist: all {MNIST_SAMPLES} samples classified as labelled" in model_api.stdout
    assert offline.returncode == 0, offline.stdout
    assert web_api.returncode == 1
    assert failures(web_api) == [
        "FAIL: the gateway runs but model_api is unavailable: every prediction gets 503; "
        "check model_api (docker exec model_api python tests/check_model_api.py)"
    ]


def test_web_api_check_says_when_no_gateway_answers() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run_check("web_api", "--url", url, APP_TYPE="cli")
    assert result.returncode == 1
    assert failures(result)[0].startswith(f"FAIL: nothing answers at {url}/health")
    assert failures(result)[0].endswith("the gateway is not running there")


def test_db_api_check_fails_on_a_wrong_password(stack: RunningServices) -> None:
    result = check_db_api(stack, password="not-the-password")
    assert result.returncode == 1
    assert failures(result)[0].startswith(
        "FAIL: Redis refused the password from REDIS_PASSWORD: it is not the one Redis was "
        "started with (WRONGPASS"
    )


@contextmanager
def redis_without_password(tmp: Path) -> Iterator[int]:
    """db_api's redis.conf with no requirepass: the misconfiguration the check must catch."""
    port = free_port()
    argv = [redis_executable(), str(ROOT / "db_api" / "redis.conf"), "--bind", "127.0.0.1"]
    argv += ["--port", str(port), "--dir", str(tmp), "--logfile", str(tmp / "redis.log")]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not port_in_use("127.0.0.1", port):
            assert process.poll() is None and time.monotonic() < deadline, "redis did not start"
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_db_api_check_fails_when_redis_needs_no_password(tmp_path: Path) -> None:
    with redis_without_password(tmp_path) as port:
        result = run_check("db_api", "--port", str(port), REDIS_PASSWORD="anything")
    assert result.returncode == 1
    assert failures(result)[0] == (
        f"FAIL: Redis at 127.0.0.1:{port} answers without a password: anyone who reaches it "
        "can read and change the cache; start it with requirepass (db_api's entrypoint sets "
        "it from REDIS_PASSWORD)"
    )


def test_web_api_check_in_ui_mode(stack: RunningServices, tmp_path: Path) -> None:
    port = free_port()
    env = {
        "APP_TYPE": "ui",
        "MODEL_NAME": "mnist",
        "MLSERVE_WEB_PORT": str(port),
        "MLSERVE_MODEL_API_URL": stack.model_api_url,
    }
    health = f"http://127.0.0.1:{port}/_stcore/health"
    ui = ServiceProcess("web_api", env, health, tmp_path / "web_api.log").start()
    try:
        result = run_check("web_api", **env)
    finally:
        ui.stop()
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines() == [
        f"ok: the Streamlit UI answers at http://127.0.0.1:{port}",
        "ok: model_api is ready for the UI: mnist on CPUExecutionProvider",
        "ok: the cache is ok",
    ]
