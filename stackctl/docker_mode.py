"""Docker mode: the stack as three containers on `stack_api` (docker compose).

Compose reads docker-compose.yml from the repository root, or the files that COMPOSE_FILE
names (the GPU variant: `docker-compose.yml:docker-compose.gpu.yml`). APP_TYPE, MODEL_NAME,
REDIS_PASSWORD and the public port reach it through the environment, never through a shell.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

from mlserve_common.stdlib_only.stack_health import (
    DEGRADED,
    DOWN,
    HEALTHY,
    SERVICES,
    model_api_state,
)
from stackctl.settings import ROOT, StackSettings

NETWORK = "stack_api"


def engine_available() -> bool:
    """True when a docker CLI is installed and its engine answers."""
    if not shutil.which("docker"):
        return False
    try:
        probe = subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def compose_command() -> list[str]:
    """`docker compose` when the plugin is installed, else the standalone `docker-compose`."""
    plugin = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if plugin.returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise SystemExit("error: Docker Compose not found: install the compose plugin")


def compose(
    settings: StackSettings,
    *args: str,
    app_type: str = "",
    model_name: str = "",
    capture: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run one compose command in the repository root with the stack's environment."""
    env = dict(
        os.environ,
        REDIS_PASSWORD=settings.redis_password(),
        MLSERVE_WEB_PORT=str(settings.web_port),
        MLSERVE_GRPC_PORT=str(settings.grpc_port),
    )
    if app_type:
        env.update(APP_TYPE=app_type, MODEL_NAME=model_name)
    return subprocess.run(
        [*compose_command(), *args],
        cwd=ROOT,
        env=env,
        text=True,
        capture_output=capture,
        check=False,
    )


def ensure_network() -> int:
    """Create the external network `stack_api` unless it exists."""
    found = subprocess.run(
        ["docker", "network", "inspect", NETWORK], capture_output=True, check=False
    )
    if found.returncode == 0:
        return 0
    return subprocess.run(["docker", "network", "create", NETWORK], check=False).returncode


def build(settings: StackSettings) -> int:
    """Build the three images."""
    return compose(settings, "build").returncode


def start(settings: StackSettings, app_type: str, model_name: str) -> int:
    """Start the containers and wait until every healthcheck passes."""
    if ensure_network() != 0:
        return 1
    timeout = str(int(settings.start_timeout))
    up = compose(
        settings,
        "up",
        "--detach",
        "--wait",
        "--wait-timeout",
        timeout,
        app_type=app_type,
        model_name=model_name,
    )
    if up.returncode != 0:
        print(
            "error: the stack did not become healthy; see `docker logs web_api` "
            "(or model_api, db_api)"
        )
        return up.returncode
    print(f"MLServe is up ({app_type}, {model_name}): http://127.0.0.1:{settings.web_port}")
    if app_type == "cli":
        print(f"gRPC (tritonclient.grpc): 127.0.0.1:{settings.grpc_port}")
    return 0


def stop(settings: StackSettings) -> int:
    """Stop and remove the containers; the Redis volume stays."""
    return compose(settings, "down", "--remove-orphans").returncode


def container_states(settings: StackSettings) -> dict[str, str]:
    """`healthy`, `degraded` (running, not healthy yet or any more) or `down` per service."""
    listing = compose(settings, "ps", "--all", "--format", "json", capture=True)
    text = listing.stdout.strip()
    # Compose prints one JSON object per line; releases before 2.21 printed one array.
    rows = json.loads(text) if text.startswith("[") else [json.loads(x) for x in text.splitlines()]
    states = dict.fromkeys(SERVICES, DOWN)
    for row in rows:
        if row.get("State") != "running":
            continue
        states[row["Service"]] = HEALTHY if row.get("Health") == "healthy" else DEGRADED
    return states


def model_api_ready() -> dict | None:
    """model_api's `/health/ready` answer as its container's last healthcheck printed it
    (None when Docker holds none): the cache's state in either app type, without a port."""
    inspect = subprocess.run(
        ["docker", "inspect", "--format", "{{json .State.Health}}", "model_api"],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        answer = json.loads(json.loads(inspect.stdout)["Log"][-1]["Output"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return answer if isinstance(answer, dict) else None


def health(settings: StackSettings) -> int:
    """One line per service; exit 1 unless all are healthy."""
    states = container_states(settings)
    # A ready model_api passes its healthcheck; with Redis unreachable it still serves,
    # uncached: that is degraded.
    ready = model_api_ready() if states["model_api"] == HEALTHY else None
    if ready is not None:
        states["model_api"] = model_api_state(200, ready)
    for service in SERVICES:
        print(f"{service}: {states[service]}")
    return 0 if all(state == HEALTHY for state in states.values()) else 1
