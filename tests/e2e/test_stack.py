"""As a user: start_all.sh, post every sample with httpx and curl, check health, stop_all.sh."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from harness.images import samples
from harness.stack import ROOT, stack_env
from stackctl.processes import alive as process_alive


def curl_predict(url: str, path: Path) -> dict:
    out = subprocess.run(
        ["curl", "-sS", "-F", f"file=@{path}", f"{url}/predict"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout)


@pytest.mark.parametrize("model", ["mnist", "leukemia"])
def test_the_stack_end_to_end(model: str, tmp_path: Path) -> None:
    stack = stack_env(tmp_path / "run")
    started = stack.script("start_all.sh", "cli", model)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"http://localhost:{stack.web_port}" in started.stdout
        pids = stack.pids()
        assert len(pids) == 3 and all(process_alive(pid) for pid in pids)

        for path, expected in samples(model):
            answer = httpx.post(f"{stack.url}/predict", content=path.read_bytes(), timeout=30)
            assert answer.status_code == 200, answer.text
            assert (answer.json()["label"], answer.json()["cached"]) == (expected, False)
        if shutil.which("curl"):
            for path, expected in samples(model):
                answer = curl_predict(stack.url, path)
                assert (answer["label"], answer["cached"]) == (expected, True)

        path, expected = samples(model)[0]
        seed = subprocess.run(
            [sys.executable, f"web_api/tests/test_{model}_cli_request.py", str(path)],
            cwd=ROOT,
            env=stack.env | {"MLSERVE_URL": stack.url},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert seed.returncode == 0, seed.stdout
        assert json.loads(seed.stdout)["label"] == expected

        health = stack.script("check_health.sh")
        assert health.returncode == 0, health.stdout
        assert health.stdout.split("\n")[:3] == [
            "db_api: healthy",
            "model_api: healthy",
            "web_api: healthy",
        ]
    finally:
        stopped = stack.script("stop_all.sh")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert not [pid for pid in pids if process_alive(pid)], "processes left behind"
    down = stack.script("check_health.sh")
    assert down.returncode == 1 and "web_api: down" in down.stdout


def test_cached_answers_survive_a_restart_of_the_stack(tmp_path: Path) -> None:
    stack = stack_env(tmp_path / "run")
    path, expected = samples("mnist")[0]
    try:
        assert stack.script("start_all.sh", "cli", "mnist").returncode == 0
        first = httpx.post(f"{stack.url}/predict", content=path.read_bytes(), timeout=30).json()
        assert first["cached"] is False
        assert stack.script("stop_all.sh").returncode == 0
        assert stack.script("start_all.sh", "cli", "mnist").returncode == 0
        again = httpx.post(f"{stack.url}/predict", content=path.read_bytes(), timeout=30).json()
        assert (again["label"], again["cached"]) == (expected, True)
    finally:
        stack.script("stop_all.sh")


@pytest.mark.parametrize(
    "args", [(), ("cli",), ("gui", "mnist"), ("cli", "resnet"), ("cli", "../models")]
)
def test_wrong_arguments_print_usage_and_start_nothing(args: tuple, tmp_path: Path) -> None:
    stack = stack_env(tmp_path / "run")
    result = stack.script("start_all.sh", *args)
    assert result.returncode == 2
    assert "usage: ./start_all.sh APP_TYPE MODEL_NAME" in result.stderr
    assert "mnist" in result.stderr and "leukemia" in result.stderr
    assert stack.pids() == []
