"""Static checks of the Docker files: hadolint, the Compose schema and `docker-compose config`."""

from __future__ import annotations

import os
import subprocess

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


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_runs_as_non_root_with_a_healthcheck(dockerfile) -> None:
    text = dockerfile.read_text()
    stages = text.split("\nFROM ")[1:]
    assert stages
    for stage in stages:
        users = [line.split()[1] for line in stage.splitlines() if line.startswith("USER ")]
        assert users and not users[-1].startswith(("root", "0")), f"a stage runs as root: {users}"
        assert "\nHEALTHCHECK " in stage


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
