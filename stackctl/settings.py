"""Launcher settings, read once from the environment (stdlib only: runs before any venv)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from mlserve_common.stdlib_only.model_folders import available_models

ROOT = Path(__file__).resolve().parent.parent
APP_TYPES = ("cli", "ui")


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


@dataclass(frozen=True)
class StackSettings:
    """Where and how the stack runs; every field has a working default for local use."""

    mode: str = field(default_factory=lambda: os.environ.get("MLSERVE_MODE", "auto"))
    """`auto` (Docker when an engine answers, else local processes), `docker` or `local`."""
    web_port: int = field(default_factory=lambda: _env_int("MLSERVE_WEB_PORT", 5000))
    """The one public port: web_api (FastAPI gateway or Streamlit UI)."""
    grpc_port: int = field(default_factory=lambda: _env_int("MLSERVE_GRPC_PORT", 5001))
    """The gateway's gRPC port (the Open Inference Protocol; APP_TYPE=cli only); 0: none."""
    model_api_port: int = field(default_factory=lambda: _env_int("MLSERVE_MODEL_API_PORT", 8000))
    """model_api's port on loopback (local mode only; in Docker it is internal)."""
    redis_port: int = field(default_factory=lambda: _env_int("MLSERVE_REDIS_PORT", 6380))
    """Redis's port on loopback (local mode only); not 6379, to stay clear of a system Redis."""
    host: str = field(default_factory=lambda: os.environ.get("MLSERVE_HOST", "127.0.0.1"))
    """Address web_api binds to in local mode."""
    run_dir: Path = field(
        default_factory=lambda: Path(os.environ.get("MLSERVE_RUN_DIR", ROOT / ".run"))
    )
    """Logs, PID files, Redis data and the generated Redis password (local mode)."""
    venv_dir: Path = field(
        default_factory=lambda: Path(os.environ.get("MLSERVE_VENV", ROOT / ".venv"))
    )
    """The virtualenv local mode runs the services from."""
    models_dir: Path = field(
        default_factory=lambda: Path(os.environ.get("MLSERVE_MODELS_DIR", ROOT / "models"))
    )
    """Folder with one sub-folder per model (`config.json` + `model.onnx`)."""
    start_timeout: float = field(
        default_factory=lambda: float(os.environ.get("MLSERVE_START_TIMEOUT", "120"))
    )
    """Seconds `start_all.sh` waits for every service to be healthy."""

    def available_models(self) -> list[str]:
        """Model folders that hold a config; the only accepted values of MODEL_NAME."""
        return available_models(self.models_dir)

    def redis_password(self) -> str:
        """REDIS_PASSWORD from the environment, else one generated once and kept in run_dir."""
        from_env = os.environ.get("REDIS_PASSWORD", "")
        if from_env:
            return from_env
        secret = self.run_dir / "redis_password"
        if secret.is_file():
            return secret.read_text().strip()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        password = secrets.token_urlsafe(24)
        secret.touch(mode=0o600)
        secret.write_text(password + "\n")
        return password
