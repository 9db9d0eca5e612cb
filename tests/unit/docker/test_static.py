"""Static checks of the Docker files: hadolint, the Compose schema and `docker-compose config`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.docker_files import COMPOSE_FILES, DOCKERFILES, ROOT, tool


def run(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run a linter in the repository root; REDIS_PASSWORD and friends come from `env`."""
    clean = {k: v for k, v in os.environ.items() if k not in ("REDIS_PASSWORD", "COMPOSE_FILE")}
    return subprocess.run(
        argv, cwd=ROOT, env=clean | env, capture_output=True, text=True, check=False
    )


def test_every_service_has_a_dockerfile() -> None:
    assert [p.parent.name for p in DOCKERFILES] == ["db_api", "model_api", "web_api"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_hadolint_passes(dockerfile) -> None:
    lint = run(tool("hadolint"), "--no-color", str(dockerfile.relative_to(ROOT)))
    assert lint.returncode == 0, lint.stdout + lint.stderr


def _stages(dockerfile: Path) -> dict[str, tuple[str | None, str]]:
    """name -> (the stage it is built FROM when that is a stage of this file, else None;
    its text), in file order."""
    stages: dict[str, tuple[str | None, str]] = {}
    for chunk in ("\n" + dockerfile.read_text()).split("\nFROM ")[1:]:
        words = chunk.split("\n", 1)[0].split()
        name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else words[0]
        stages[name] = (words[0] if words[0] in stages else None, chunk)
    return stages


def _inherited(stages: dict, name: str, keyword: str) -> list[str]:
    """Every `keyword` instruction line of stage `name` and the stages it is built from, the
    stage's own last (a later one overrides an earlier)."""
    parent, text = stages[name]
    own = [line for line in text.splitlines() if line.startswith(keyword + " ")]
    return (_inherited(stages, parent, keyword) if parent else []) + own


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_runs_as_non_root_with_a_healthcheck(dockerfile) -> None:
    """Every stage a build can target (one no other stage of the file builds on) runs as a
    user that is not root, with a health check: its own or inherited from its base stage."""
    stages = _stages(dockerfile)
    bases = {parent for parent, _ in stages.values() if parent}
    targets = [name for name in stages if name not in bases]
    assert targets
    for name in targets:
        users = [line.split()[1] for line in _inherited(stages, name, "USER")]
        assert users and not users[-1].startswith(("root", "0")), f"{name} runs as root: {users}"
        assert _inherited(stages, name, "HEALTHCHECK"), f"{name} has no health check"


def test_model_apis_targets_share_one_base_stage() -> None:
    stages = _stages(ROOT / "model_api" / "Dockerfile")
    assert list(stages) == ["base", "cpu", "gpu"]  # CPU first: classic builds skip CUDA
    assert stages["cpu"][0] == stages["gpu"][0] == "base"


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.split("[")[0].lower()] = version
    return pins


# onnxruntime-gpu's releases follow the CPU package's by a few weeks: the GPU image may be
# one minor release behind while the next one is not out (requirements-gpu.txt says so).
ORT_GPU_MAY_LAG_MINORS = 1


def test_the_cpu_and_gpu_images_pin_the_same_packages_and_onnx_runtime() -> None:
    cpu = _pins(ROOT / "model_api" / "requirements.txt")
    gpu = _pins(ROOT / "model_api" / "requirements-gpu.txt")
    cpu_ort, gpu_ort = cpu.pop("onnxruntime"), gpu.pop("onnxruntime-gpu")
    cuda = {name for name in gpu if name.startswith("nvidia-")}
    assert {name: gpu[name] for name in gpu if name not in cuda} == cpu
    cpu_major, cpu_minor = map(int, cpu_ort.split(".")[:2])
    gpu_major, gpu_minor = map(int, gpu_ort.split(".")[:2])
    assert gpu_major == cpu_major and 0 <= cpu_minor - gpu_minor <= ORT_GPU_MAY_LAG_MINORS, (
        f"onnxruntime {cpu_ort} (CPU) and onnxruntime-gpu {gpu_ort} (GPU) drifted apart"
    )
    if gpu_ort != cpu_ort:
        assert "lags" in (ROOT / "model_api" / "requirements-gpu.txt").read_text(), (
            "requirements-gpu.txt must say why onnxruntime-gpu differs from the CPU image's"
        )


def test_compose_files_match_the_compose_spec() -> None:
    files = [str(p.relative_to(ROOT)) for p in COMPOSE_FILES]
    check = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", *files)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize(
    "compose_file", ["docker-compose.yml", "docker-compose.yml:docker-compose.gpu.yml"]
)
def test_docker_compose_config_is_valid(compose_file: str) -> None:
    placeholder = {"REDIS_PASSWORD": "placeholder", "COMPOSE_FILE": compose_file}
    config = run(tool("docker-compose"), "config", "-q", **placeholder)
    assert config.returncode == 0, config.stderr


def test_the_redis_password_is_never_hard_coded() -> None:
    config = run(tool("docker-compose"), "config", "-q")
    assert config.returncode != 0
    assert "REDIS_PASSWORD" in config.stderr
