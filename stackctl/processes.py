"""Start, track and stop the local stack's processes through PID files."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path


def spawn(name: str, argv: list[str], env: dict[str, str], run_dir: Path, cwd: Path) -> int:
    """Start `argv` in its own session, output to logs/NAME.log; record its PID."""
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    (run_dir / "pids").mkdir(parents=True, exist_ok=True)
    with (run_dir / "logs" / f"{name}.log").open("ab") as log:
        process = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop reaches its children too
        )
    (run_dir / "pids" / f"{name}.pid").write_text(f"{process.pid}\n")
    return process.pid


def read_pid(run_dir: Path, name: str) -> int | None:
    path = run_dir / "pids" / f"{name}.pid"
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def alive(pid: int | None) -> bool:
    """True while the process exists and is not a zombie."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[0] != "Z"
    except (OSError, IndexError):
        return True


def terminate(run_dir: Path, name: str, grace_seconds: float = 30.0) -> bool:
    """SIGTERM the process group, wait for a graceful exit, SIGKILL after the grace period.

    Returns True when something was running.
    """
    pid = read_pid(run_dir, name)
    pid_file = run_dir / "pids" / f"{name}.pid"
    if not alive(pid):
        pid_file.unlink(missing_ok=True)
        return False
    _signal_group(pid, signal.SIGTERM)  # type: ignore[arg-type]
    deadline = time.monotonic() + grace_seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(pid):
        _signal_group(pid, signal.SIGKILL)  # type: ignore[arg-type]
        while alive(pid):
            time.sleep(0.05)
    _signal_group(pid, signal.SIGKILL)  # type: ignore[arg-type]  # stragglers of the group
    pid_file.unlink(missing_ok=True)
    return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def log_tail(run_dir: Path, name: str, lines: int = 20) -> str:
    path = run_dir / "logs" / f"{name}.log"
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
