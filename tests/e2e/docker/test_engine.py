"""The stack on a real Docker engine, driven the way a user would: the *_all.sh scripts.

Run by scripts/test_docker.sh, which provides the engine (DOCKER_HOST), the base images and
the wheels; `-m docker` selects these tests, which the default run leaves out.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from harness import ROOT
from harness.images import samples

MNIST_SAMPLES = len(samples("mnist"))  # the check classifies every shipped sample

pytestmark = pytest.mark.docker

WEB_PORT = int(os.environ.get("MLSERVE_WEB_PORT", "5000"))
WEB_URL = f"http://127.0.0.1:{WEB_PORT}"
GRPC_PORT = int(os.environ.get("MLSERVE_GRPC_PORT", "5001"))
SAMPLE_DIR = ROOT / "models" / "mnist" / "samples"
LABELS: dict[str, str] = json.loads((SAMPLE_DIR / "labels.json").read_text())
SAMPLES = [SAMPLE_DIR / name for name in sorted(LABELS)]


def run(*argv: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """A command in the repository root, as a user would type it."""
    return subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )


def port_is_open(port: int) -> bool:
    """True when something accepts connections on 127.0.0.1:port."""
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def predict(client: httpx.Client, sample) -> dict:
    """POST one sample image to the gateway; the JSON answer."""
    answer = client.post("/predict", files={"file": (sample.name, sample.read_bytes())})
    assert answer.status_code == 200, answer.text
    return answer.json()


def wait_until_healthy(deadline_s: float = 90) -> subprocess.CompletedProcess[str]:
    """Poll check_health.sh until it passes or the deadline is gone; its last run."""
    end = time.monotonic() + deadline_s
    while True:
        check = run("./check_health.sh")
        if check.returncode == 0 or time.monotonic() > end:
            return check
        time.sleep(2)


@pytest.fixture(scope="module")
def stack() -> Iterator[None]:
    """build_all.sh, then start_all.sh cli mnist; stop_all.sh afterwards."""
    assert os.environ.get("DOCKER_HOST"), "run these through scripts/test_docker.sh"
    assert not port_is_open(WEB_PORT), f"port {WEB_PORT} is taken: set MLSERVE_WEB_PORT"
    assert not port_is_open(GRPC_PORT), f"port {GRPC_PORT} is taken: set MLSERVE_GRPC_PORT"
    run("docker", "volume", "rm", "mlserve_db_data")  # a cold cache, on the test's own engine
    build = run("./build_all.sh")
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    start = run("./start_all.sh", "cli", "mnist")
    assert start.returncode == 0, start.stdout[-3000:] + start.stderr[-3000:]
    yield
    run("./stop_all.sh")


@pytest.fixture
def client(stack: None) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=WEB_URL, timeout=30) as client:
        yield client


def test_start_all_refuses_a_wrong_app_type() -> None:
    refused = run("./start_all.sh", "gui", "mnist")
    assert refused.returncode == 2
    assert "usage:" in refused.stderr


def test_check_health_reports_every_service_healthy(stack: None) -> None:
    check = run("./check_health.sh")
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.split() == [
        "db_api:",
        "healthy",
        "model_api:",
        "healthy",
        "web_api:",
        "healthy",
    ]


def test_samples_are_classified_then_answered_from_the_cache(client: httpx.Client) -> None:
    for sample in SAMPLES:
        first = predict(client, sample)
        assert first["label"] == LABELS[sample.name], sample.name
        assert first["cached"] is False, sample.name
        again = predict(client, sample)
        assert again["cached"] is True, sample.name
        assert again["label"] == first["label"]


def docker_proxy_ports() -> set[int]:
    """Host ports the engine publishes: with --iptables=false each one is a docker-proxy."""
    listeners = run("ss", "-ltnpH").stdout.splitlines()
    return {int(line.split()[3].rsplit(":", 1)[1]) for line in listeners if "docker-proxy" in line}


def test_only_the_gateway_is_published(stack: None) -> None:
    # 8000 and 6379 may be taken on the host by a local-mode stack, so ask the engine.
    assert docker_proxy_ports() == {WEB_PORT, GRPC_PORT}
    for service in ("model_api", "db_api"):
        assert run("docker", "port", service).stdout.strip() == "", service
    published = run("docker", "port", "web_api").stdout.splitlines()
    assert {line.split(" ")[0] for line in published if line} == {"5000/tcp", "5001/tcp"}


def test_tritonclient_grpc_is_served_on_the_published_port(stack: None) -> None:
    import numpy as np
    import tritonclient.grpc as triton

    sample = SAMPLES[0]
    with triton.InferenceServerClient(f"127.0.0.1:{GRPC_PORT}") as client:
        assert client.is_server_live() and client.is_model_ready("mnist")
        image = triton.InferInput("image", [1], "BYTES")
        image.set_data_from_numpy(np.array([sample.read_bytes()], dtype=np.object_))
        rows = client.infer("mnist", [image]).as_numpy("probabilities")
    assert str(int(rows[0].argmax())) == LABELS[sample.name]


def test_every_container_runs_as_a_non_root_user(stack: None) -> None:
    for service in ("web_api", "model_api", "db_api"):
        uid = run("docker", "exec", service, "id", "-u").stdout.strip()
        assert uid not in ("", "0"), service


def test_docker_logs_show_each_service(stack: None) -> None:
    for service in ("web_api", "model_api", "db_api"):
        logs = run("docker", "logs", service)
        assert logs.returncode == 0 and (logs.stdout + logs.stderr).strip(), service


CONTAINER_CHECKS = {
    "db_api": ["append-only file on", "eviction allkeys-lru"],
    "model_api": [f"mnist: all {MNIST_SAMPLES} samples classified as labelled", "is ready: mnist"],
    # The web_api image carries no models: its /predict check sends a drawn image.
    "web_api": ["model_api is ready behind the gateway", "for a drawn test image"],
}


@pytest.mark.parametrize("service", CONTAINER_CHECKS)
def test_each_container_checks_itself(stack: None, service: str) -> None:
    check = run("docker", "exec", service, "python", f"tests/check_{service}.py")
    assert check.returncode == 0, check.stdout + check.stderr
    lines = check.stdout.splitlines()
    assert lines and all(line.startswith("ok: ") for line in lines), check.stdout
    for expected in CONTAINER_CHECKS[service]:
        assert expected in check.stdout, (expected, check.stdout)


def test_db_api_check_fails_on_a_wrong_password(stack: None) -> None:
    argv = ["--env", "REDIS_PASSWORD=not-the-password", "db_api", "python"]
    check = run("docker", "exec", *argv, "tests/check_db_api.py")
    assert check.returncode == 1, check.stdout + check.stderr
    assert "FAIL: Redis refused the password from REDIS_PASSWORD" in check.stdout


def test_check_health_sees_model_api_serving_without_its_cache(client: httpx.Client) -> None:
    """db_api stopped: model_api still answers, uncached; check_health.sh reads that from
    model_api's own healthcheck (either app type), then all is healthy again."""
    image = sorted(SAMPLE_DIR.glob("*.png"))[0].read_bytes()
    assert run("docker", "stop", "db_api").returncode == 0
    try:
        deadline = time.monotonic() + 60
        while True:
            assert client.post("/predict", content=image).status_code == 200  # uncached
            check = run("./check_health.sh")
            if "model_api: degraded" in check.stdout or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert check.returncode == 1
        assert check.stdout.splitlines() == [
            "db_api: down",
            "model_api: degraded",
            "web_api: healthy",
        ], check.stdout
    finally:
        assert run("docker", "start", "db_api").returncode == 0
    assert wait_until_healthy().returncode == 0


def redis_key_count() -> int:
    """Keys in db_api's Redis, asked inside the container (the password stays in its env)."""
    ask = 'REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli dbsize'
    return int(run("docker", "exec", "db_api", "sh", "-c", ask).stdout)


def test_cached_results_survive_a_db_api_restart(client: httpx.Client) -> None:
    sample = SAMPLES[0]
    predict(client, sample)
    assert predict(client, sample)["cached"] is True
    keys = redis_key_count()
    time.sleep(1.5)  # Redis fsyncs its append-only file every second
    assert run("docker", "restart", "db_api").returncode == 0
    check = wait_until_healthy()
    assert check.returncode == 0, check.stdout
    assert redis_key_count() == keys
    # model_api notices the restart on its next cache call: that answer skips the cache,
    # then it reconnects in the background and answers from the entries that survived.
    answers = []
    for _ in range(10):
        answers.append(predict(client, sample)["cached"])
        if answers[-1]:
            break
        time.sleep(1)
    assert answers[-1] is True, answers
    assert redis_key_count() == keys


def test_stop_all_removes_the_containers_and_keeps_the_data(stack: None) -> None:
    started = time.monotonic()
    stop = run("./stop_all.sh")
    assert stop.returncode == 0, stop.stderr
    # Every process exits on SIGTERM; a hung one would hold stop_all.sh for 35 s.
    assert time.monotonic() - started < 15
    assert run("docker", "ps", "--all", "--quiet").stdout.strip() == ""
    assert run("docker", "volume", "inspect", "mlserve_db_data").returncode == 0
    assert run("./check_health.sh").returncode == 1
