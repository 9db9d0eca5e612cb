"""The whole stack started the way a user starts it: ./start_all.sh, on free ports."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from harness import ROOT
from harness.redis_server import free_port


@dataclass
class Stack:
    """A running local-mode stack; `url` is its public web_api address."""

    env: dict[str, str]
    run_dir: Path
    web_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def script(self, name: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run one of the stack scripts (e.g. "check_health.sh") as a user would."""
        return subprocess.run(
            [str(ROOT / name), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def pids(self) -> list[int]:
        pid_dir = self.run_dir / "pids"
        return [int(p.read_text()) for p in pid_dir.glob("*.pid")] if pid_dir.is_dir() else []


def stack_env(run_dir: Path) -> Stack:
    """Environment for a private stack: local mode, free ports, its own run dir, this venv."""
    web_port = free_port()
    env = {
        **os.environ,
        "MLSERVE_MODE": "local",
        "MLSERVE_RUN_DIR": str(run_dir),
        "MLSERVE_VENV": sys.prefix,
        "MLSERVE_WEB_PORT": str(web_port),
        "MLSERVE_GRPC_PORT": str(free_port()),
        "MLSERVE_MODEL_API_PORT": str(free_port()),
        "MLSERVE_REDIS_PORT": str(free_port()),
    }
    return Stack(env, run_dir, web_port)
