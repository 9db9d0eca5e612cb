"""stackctl's Docker mode without an engine: health from `compose ps`, the compose argv."""

from __future__ import annotations

import json
import subprocess

import pytest

from harness.redis_server import free_port
from mlserve_common.stdlib_only.stack_health import SERVICES
from stackctl import docker_mode
from stackctl.settings import StackSettings


def fake_ps(monkeypatch: pytest.MonkeyPatch, stdout: str) -> list[tuple[str, ...]]:
    """Answer every compose call with `stdout`; the calls are recorded."""
    calls: list[tuple[str, ...]] = []

    def compose(settings, *args, **kwargs) -> subprocess.CompletedProcess[str]:
        calls.append(args)
        return subprocess.CompletedProcess(args, 0, stdout=stdout, stderr="")

    monkeypatch.setattr(docker_mode, "compose", compose)
    return calls


def row(service: str, state: str, health: str) -> dict[str, str]:
    return {"Service": service, "State": state, "Health": health}


@pytest.fixture
def settings(tmp_path) -> StackSettings:
    return StackSettings(run_dir=tmp_path, web_port=free_port())


def fake_health_log(monkeypatch: pytest.MonkeyPatch, output: str) -> None:
    """`docker inspect` of model_api answers with one healthcheck run that printed `output`."""
    health = {"Status": "healthy", "Log": [{"ExitCode": 0, "Output": output}]}

    def run(argv, **kwargs) -> subprocess.CompletedProcess[str]:
        assert argv[:2] == ["docker", "inspect"] and argv[-1] == "model_api"
        return subprocess.CompletedProcess(argv, 0, stdout=json.dumps(health) + "\n", stderr="")

    monkeypatch.setattr(docker_mode.subprocess, "run", run)


ALL_HEALTHY = "\n".join(json.dumps(row(name, "running", "healthy")) for name in SERVICES)


def test_health_is_healthy_when_every_container_is(monkeypatch, settings, capsys) -> None:
    fake_ps(monkeypatch, ALL_HEALTHY)
    fake_health_log(monkeypatch, '{"status": "ready", "cache": "ok"}')
    assert docker_mode.health(settings) == 0
    # the order local mode prints too
    assert capsys.readouterr().out.splitlines() == [
        "db_api: healthy",
        "model_api: healthy",
        "web_api: healthy",
    ]


@pytest.mark.parametrize(
    "output", ['{"status": "ready", "cache": "degraded"}', '{"status": "ready"}', "[]"]
)
def test_model_api_serving_without_its_cache_is_degraded(
    monkeypatch, settings, capsys, output
) -> None:
    """In either app type: read from model_api's own healthcheck, not from the gateway."""
    fake_ps(monkeypatch, ALL_HEALTHY)
    fake_health_log(monkeypatch, output)
    expected = "degraded" if output != "[]" else "healthy"  # nothing readable: Docker's word
    assert docker_mode.health(settings) == (1 if expected == "degraded" else 0)
    assert f"model_api: {expected}" in capsys.readouterr().out.splitlines()


def test_health_tells_degraded_from_down(monkeypatch, settings, capsys) -> None:
    # Compose before 2.21 printed one JSON array instead of one object per line.
    rows = [row("web_api", "running", "starting"), row("model_api", "exited", "")]
    fake_ps(monkeypatch, json.dumps(rows))
    assert docker_mode.health(settings) == 1
    assert capsys.readouterr().out.splitlines() == [
        "db_api: down",
        "model_api: down",
        "web_api: degraded",
    ]


def test_health_with_no_containers_says_down(monkeypatch, settings, capsys) -> None:
    fake_ps(monkeypatch, "")
    assert docker_mode.health(settings) == 1
    assert capsys.readouterr().out.count(": down") == 3
