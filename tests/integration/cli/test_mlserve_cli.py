"""The `mlserve` command against a real stack (./start_all.sh cli mnist), never mocks."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from harness.images import encode, samples
from harness.metrics import metric
from harness.redis_server import free_port
from harness.stack import ROOT, Stack, stack_env
from stackctl.processes import terminate

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
    health = json.loads(mlserve("health", "--json", "--url", stack.url).stdout)
    assert health["status"] == "healthy" and health["model"] == "mnist"
    assert health["version"] == "1" and len(health["digest"]) == 64
    table = mlserve("health", url=stack.url)
    assert table.returncode == 0, table.stderr
    assert "healthy" in table.stdout and "mnist" in table.stdout
    assert health["digest"][:12] in table.stdout and health["digest"][:13] not in table.stdout
    models = mlserve("models", "--json", url=stack.url)
    assert models.returncode == 0
    leukemia, mnist = json.loads(models.stdout)
    assert mnist["name"] == "mnist" and mnist["labels"] == [str(d) for d in range(10)]
    assert (mnist["version"], mnist["digest"]) == (health["version"], health["digest"])
    for model in (leukemia, mnist):
        assert model["versions"] == ["1"] and model["state"] == "READY" and model["ready"]
        assert model["version"] == "1" and len(model["digest"]) == 64
    assert leukemia["name"] == "leukemia" and leukemia["labels"] == ["all", "hem"]
    assert leukemia["digest"] != mnist["digest"]
    table = mlserve("models", url=stack.url).stdout
    assert "mnist" in table and "leukemia" in table and "READY" in table
    for model in (leukemia, mnist):
        assert model["digest"][:12] in table and model["digest"][:13] not in table


def test_predict_with_another_loaded_model(stack: Stack) -> None:
    files = {str(path): label for path, label in samples("leukemia")[:3]}
    result = mlserve("predict", *files, "--model", "leukemia", "--json", url=stack.url)
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout)
    assert {a["file"]: a["label"] for a in answers} == files
    assert {a["model"] for a in answers} == {"leukemia"}
    leukemia = json.loads(mlserve("models", "--json", url=stack.url).stdout)[0]
    assert {a["digest"] for a in answers} == {leukemia["digest"]}
    again = json.loads(
        mlserve("predict", *files, "--model", "leukemia", "--json", url=stack.url).stdout
    )
    assert [(a["label"], a["uploaded"], a["cached"]) for a in again] == [
        (a["label"], False, True) for a in answers
    ]  # asked leukemia for them by content, not the stack's own model
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
    for result in results:
        assert result["sha256"] == hashlib.sha256(Path(result["file"]).read_bytes()).hexdigest()
    again = json.loads(mlserve("predict", *expected, "--json", url=stack.url).stdout)
    assert [(r["cached"], r["uploaded"]) for r in again] == [(True, False)] * len(expected)


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

    for name in ("notes.txt", "report.pdf", "truncated.png"):
        assert by_name[name]["uploaded"]  # nothing was stored for them: sent, and refused

    table = mlserve("predict", str(mixed_folder), url=stack.url)
    assert table.returncode == 1
    assert "3 ok, 3 failed; 3 answered by content, 3 uploaded" in table.stdout
    assert "truncated" in table.stdout
    assert "Traceback" not in table.stdout + table.stderr


def test_a_missing_file_fails_alone(stack: Stack) -> None:
    good, label = samples("mnist")[7]
    result = mlserve("predict", str(good), "no/such/digit.png", "--json", url=stack.url)
    assert result.returncode == 1
    good_result, missing = json.loads(result.stdout)
    assert good_result["ok"] and good_result["label"] == label
    assert missing == {
        "file": "no/such/digit.png",
        "ok": False,
        "uploaded": False,
        "error": "file not found",
    }


SAME_ANSWER = ("model", "version", "digest", "sha256", "label", "confidence", "probabilities")
"""What an answer by content must share with the upload's answer it stands for."""
LOOKUPS = "mlserve_gateway_cache_lookups_total"


PHOTOS = 200
"""The issue's folder: a second run over 200 pictures uploads none of them."""


def fresh_digits(folder: Path, count: int = PHOTOS) -> list[Path]:
    """`count` distinct PNGs that no other test sends: the mnist samples on white, each at a
    size of its own."""
    shown = [path for path, _ in samples("mnist")]
    paths = []
    for index in range(count):
        with Image.open(shown[index % len(shown)]) as image:
            flat = Image.new("RGBA", image.size, "white")
            flat.alpha_composite(image.convert("RGBA"))
        side = 40 + index
        path = folder / f"digit_{index:03d}.png"
        path.write_bytes(encode(flat.convert("RGB").resize((side, side))))
        paths.append(path)
    return paths


def served_counts(stack: Stack) -> dict[str, float]:
    """What reached the server, by its own Prometheus counters: the gateway's cache reads
    for uploads (any result) and the uploads it answered itself, and the predictions
    model_api answered and computed. Asking by content moves none of them."""
    gateway = httpx.get(f"{stack.url}/metrics").text
    model_api_url = f"http://127.0.0.1:{stack.env['MLSERVE_MODEL_API_PORT']}"
    model_api = httpx.get(f"{model_api_url}/metrics").text
    return {
        "gateway_lookups": metric(gateway, LOOKUPS, model="mnist"),
        "gateway_hits": metric(gateway, LOOKUPS, model="mnist", result="hit"),
        "model_api_answers": metric(model_api, "mlserve_request_success_total", model="mnist"),
        "inferences": metric(model_api, "mlserve_inferences_total", model="mnist"),
    }


def test_a_folder_sent_again_is_answered_by_content_and_uploads_nothing(
    stack: Stack, tmp_path: Path
) -> None:
    paths = fresh_digits(tmp_path)
    health = json.loads(mlserve("health", "--json", url=stack.url).stdout)

    def predict_folder(*options: str) -> tuple[dict[str, dict], str, dict[str, float]]:
        """Answers by file name, the summary line, and how the server's counters moved."""
        before = served_counts(stack)
        result = mlserve("predict", str(tmp_path), "--json", *options, url=stack.url)
        assert result.returncode == 0, result.stderr
        after = served_counts(stack)
        answers = {Path(answer["file"]).name: answer for answer in json.loads(result.stdout)}
        assert sorted(answers) == [path.name for path in paths]
        return answers, result.stderr, {key: after[key] - before[key] for key in before}

    first, summary, moved = predict_folder()
    assert f"{PHOTOS} ok, 0 failed; 0 answered by content, {PHOTOS} uploaded" in summary
    assert all(answer["uploaded"] and not answer["cached"] for answer in first.values())
    assert moved["model_api_answers"] == moved["inferences"] == PHOTOS  # each one computed
    assert moved["gateway_hits"] == 0
    for path in paths:
        answer = first[path.name]
        assert answer["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert (answer["model"], answer["version"]) == ("mnist", health["version"])
        assert answer["digest"] == health["digest"]

    second, summary, moved = predict_folder()
    assert f"{PHOTOS} ok, 0 failed; {PHOTOS} answered by content, 0 uploaded" in summary
    # Not one upload: the gateway read the cache for none, model_api answered none.
    assert moved == dict.fromkeys(moved, 0)
    for name, answer in first.items():
        again = second[name]
        assert again["uploaded"] is False and again["cached"] is True
        assert {key: again[key] for key in SAME_ANSWER} == {key: answer[key] for key in SAME_ANSWER}

    third, summary, moved = predict_folder("--always-upload")
    assert f"{PHOTOS} ok, 0 failed; 0 answered by content, {PHOTOS} uploaded" in summary
    # Every file reached the server (answered by the gateway or by model_api), from the cache.
    assert moved["gateway_hits"] + moved["model_api_answers"] == PHOTOS
    assert moved["inferences"] == 0
    for name, answer in first.items():
        again = third[name]
        assert again["uploaded"] is True and again["cached"] is True
        assert {key: again[key] for key in SAME_ANSWER} == {key: answer[key] for key in SAME_ANSWER}
    assert mlserve("predict", str(tmp_path), "--no-ask", url=stack.url).returncode == 0


def test_when_the_cache_cannot_be_read_the_files_are_uploaded(tmp_path: Path) -> None:
    stack = stack_env(tmp_path / "run")
    started = stack.script("start_all.sh", "cli", "mnist")
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        files = {str(path): label for path, label in samples("mnist")[:3]}
        assert mlserve("predict", *files, url=stack.url).returncode == 0  # stored now
        assert terminate(stack.run_dir, "db_api")  # Redis stops
        sha256 = hashlib.sha256(Path(next(iter(files))).read_bytes()).hexdigest()
        asked = httpx.get(f"{stack.url}/v1/models/mnist/predictions/{sha256}")
        assert (asked.status_code, asked.json()["code"]) == (503, "cache_unavailable")
        result = mlserve("predict", *files, "--json", url=stack.url)
        assert result.returncode == 0, result.stderr
        answers = json.loads(result.stdout)
        assert {a["file"]: a["label"] for a in answers} == files
        assert all(a["uploaded"] and not a["cached"] for a in answers)  # computed again
        assert "0 answered by content, 3 uploaded" in result.stderr
    finally:
        stack.script("stop_all.sh")


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
