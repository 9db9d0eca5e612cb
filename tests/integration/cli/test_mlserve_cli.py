"""The `mlserve` command against a real stack (./start_all.sh cli mnist), never mocks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.images import samples
from harness.redis_server import free_port
from harness.stack import ROOT, Stack, stack_env

pytestmark = pytest.mark.slow

CLI_SOURCE = ROOT / "cli"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = stack_env(tmp_path_factory.mktemp("cli-stack"))
    stack.env["MLSERVE_MODELS"] = "all"  # leukemia too, beside MODEL_NAME
    started = stack.script("start_all.sh", "cli", "mnist")
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        yield stack
    finally:
        stack.script("stop_all.sh")


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three good digits and three bad files: text, a cut-off PNG, a PDF."""
    folder = tmp_path_factory.mktemp("mixed")
    for path, _ in samples("mnist")[:3]:
        shutil.copy(path, folder / path.name)
    (folder / "notes.txt").write_text("not an image\n")
    (folder / "truncated.png").write_bytes(samples("mnist")[5][0].read_bytes()[:300])
    (folder / "report.pdf").write_bytes(b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n1 0 obj\n")
    return folder


def mlserve(*args: str, url: str | None = None) -> subprocess.CompletedProcess:
    """Run the command as a user would; `url` goes in through MLSERVE_URL."""
    env = {**os.environ, "PYTHONPATH": str(CLI_SOURCE)}
    env.pop("MLSERVE_URL", None)
    if url:
        env["MLSERVE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "mlserve_cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_mlserve_command_is_installed_and_the_wrapper_finds_it(tmp_path) -> None:
    command = Path(sys.prefix) / "bin" / "mlserve"
    assert command.exists(), "install the CLI into this venv: pip install -e ./cli"
    result = subprocess.run([str(command), "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("mlserve ")
    wrapper = [str(ROOT / "mlserve"), "--version"]
    found = subprocess.run(wrapper, capture_output=True, text=True, env=venv_env(sys.prefix))
    assert found.returncode == 0 and found.stdout == result.stdout
    missing = subprocess.run(wrapper, capture_output=True, text=True, env=venv_env(tmp_path))
    assert missing.returncode == 2 and "run ./build_all.sh" in missing.stderr


def venv_env(venv) -> dict[str, str]:
    return {**os.environ, "MLSERVE_VENV": str(venv)}


def test_health_and_models(stack: Stack) -> None:
    table = mlserve("health", url=stack.url)
    assert table.returncode == 0, table.stderr
    assert "healthy" in table.stdout and "mnist" in table.stdout
    health = json.loads(mlserve("health", "--json", "--url", stack.url).stdout)
    assert health["status"] == "healthy" and health["model"] == "mnist"
    models = mlserve("models", "--json", url=stack.url)
    assert models.returncode == 0
    leukemia, mnist = json.loads(models.stdout)
    assert mnist["name"] == "mnist" and mnist["labels"] == [str(d) for d in range(10)]
    assert mnist["version"] == health["version"]
    for model in (leukemia, mnist):
        assert model["versions"] == ["1"] and model["state"] == "READY" and model["ready"]
    assert leukemia["name"] == "leukemia" and leukemia["labels"] == ["all", "hem"]
    table = mlserve("models", url=stack.url).stdout
    assert "mnist" in table and "leukemia" in table and "READY" in table


def test_predict_with_another_loaded_model(stack: Stack) -> None:
    files = {str(path): label for path, label in samples("leukemia")[:3]}
    result = mlserve("predict", *files, "--model", "leukemia", "--json", url=stack.url)
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout)
    assert {a["file"]: a["label"] for a in answers} == files
    assert {a["model"] for a in answers} == {"leukemia"}
    unknown = mlserve("predict", *files, "--model", "resnet50", url=stack.url)
    assert unknown.returncode == 1 and "not served" in unknown.stdout


def test_every_sample_is_classified_and_repeats_come_from_the_cache(
    stack: Stack, tmp_path: Path
) -> None:
    for path, _ in samples("mnist"):
        shutil.copy(path, tmp_path / path.name)
    expected = {str(tmp_path / path.name): label for path, label in samples("mnist")}
    first = mlserve("predict", str(tmp_path), "--json", url=stack.url)
    assert first.returncode == 0, first.stderr
    results = json.loads(first.stdout)
    assert {r["file"]: r["label"] for r in results} == expected
    assert all(r["ok"] and 0 < r["confidence"] <= 1 and r["latency_ms"] > 0 for r in results)
    again = json.loads(mlserve("predict", *expected, "--json", url=stack.url).stdout)
    assert [r["cached"] for r in again] == [True] * len(expected)


def test_mixed_folder_reports_each_bad_file_and_exits_1(stack: Stack, mixed_folder: Path) -> None:
    result = mlserve("predict", str(mixed_folder), "--json", url=stack.url)
    assert result.returncode == 1
    by_name = {Path(r["file"]).name: r for r in json.loads(result.stdout)}
    assert len(by_name) == 6
    for path, label in samples("mnist")[:3]:
        assert by_name[path.name]["ok"] and by_name[path.name]["label"] == label
    assert "not an image" in by_name["notes.txt"]["error"]
    assert "PDF" in by_name["report.pdf"]["error"]
    assert "truncated or corrupt" in by_name["truncated.png"]["error"]
    assert not any(by_name[name]["ok"] for name in ("notes.txt", "report.pdf", "truncated.png"))

    table = mlserve("predict", str(mixed_folder), url=stack.url)
    assert table.returncode == 1
    assert "3 ok, 3 failed" in table.stdout and "truncated" in table.stdout
    assert "Traceback" not in table.stdout + table.stderr


def test_a_missing_file_fails_alone(stack: Stack) -> None:
    good, label = samples("mnist")[7]
    result = mlserve("predict", str(good), "no/such/digit.png", "--json", url=stack.url)
    assert result.returncode == 1
    good_result, missing = json.loads(result.stdout)
    assert good_result["ok"] and good_result["label"] == label
    assert missing == {"file": "no/such/digit.png", "ok": False, "error": "file not found"}


def test_server_down_is_one_clear_line() -> None:
    down = f"http://127.0.0.1:{free_port()}"
    good, _ = samples("mnist")[0]
    for args in (("predict", str(good)), ("health",), ("models",)):
        result = mlserve(*args, "--url", down)
        assert result.returncode == 1
        assert result.stdout == ""
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"error: cannot reach the MLServe gateway at {down}")


def test_wrong_arguments_exit_2() -> None:
    assert mlserve("predict").returncode == 2
    assert mlserve("frobnicate").returncode == 2
