"""Start, track and stop the local stack's processes through PID files.

`pids/NAME.pid` holds the PID: written by `spawn`, or by hand after restarting a service.
`pids/NAME.started` holds "PID START_TICKS", the kernel's start time of the process that
`spawn` started, so that stop can tell it from an unrelated process that got its PID later.
Stop never waits without a deadline: SIGTERM, SIGKILL after a grace period, then give up.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

STOPPED, KILLED, NOT_RUNNING, FAILED = "stopped", "killed", "not running", "failed"
"""What `terminate` did: the outcome of a `StopResult`."""
CLOCK_SLACK_SECONDS = 1.0
"""How much later than its PID file a hand-recorded process may seem to have started."""


@dataclass(frozen=True)
class StopResult:
    """What stopping one service did; `message` completes the line "NAME: ..."."""

    outcome: str
    message: str

    def __bool__(self) -> bool:
        """True when the service was running and is gone now."""
        return self.outcome in (STOPPED, KILLED)


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
    _pid_file(run_dir, name).write_text(f"{process.pid}\n")
    ticks = _start_ticks(process.pid)  # the fork's time: the same before and after exec
    if ticks is not None:
        _started_file(run_dir, name).write_text(f"{process.pid} {ticks}\n")
    return process.pid


def read_pid(run_dir: Path, name: str) -> int | None:
    try:
        pid = int(_pid_file(run_dir, name).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid > 0 else None


def alive(pid: int | None) -> bool:
    """True while the process exists and is not a zombie."""
    if not pid or pid < 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = _proc_stat(pid)
    return stat is None or stat[0] != "Z"


def running(run_dir: Path, name: str) -> bool:
    """True while the process recorded for NAME runs (not a stranger that got its PID)."""
    pid = read_pid(run_dir, name)
    return pid is not None and alive(pid) and _stranger(run_dir, name, pid) is None


def terminate(
    run_dir: Path, name: str, grace_seconds: float = 30.0, kill_seconds: float = 5.0
) -> StopResult:
    """Stop the process recorded for NAME and say what happened.

    SIGTERM to its process group when it leads one (its workers too), else to the process
    alone; SIGKILL after `grace_seconds`; give up `kill_seconds` later, keeping the PID file.
    A PID that is gone, or now another process's, is not signalled: its files are removed.
    """
    pid = read_pid(run_dir, name)
    if pid is None:
        note = " (unreadable PID file removed)" if _pid_file(run_dir, name).exists() else ""
        _forget(run_dir, name)
        return StopResult(NOT_RUNNING, f"was not running{note}")
    if not alive(pid):
        _forget(run_dir, name)
        return StopResult(NOT_RUNNING, f"was not running (PID {pid} had exited)")
    stranger = _stranger(run_dir, name, pid)
    if stranger is not None:
        _forget(run_dir, name)
        reused = f"PID {pid} is now another process, left alone: {stranger}"
        return StopResult(NOT_RUNNING, f"was not running ({reused})")
    group = _leads_group(pid) and pid != os.getpgrp()  # never our own group
    alone = "" if group else ", not a process-group leader: signalled alone"
    began = time.monotonic()
    problem = _send(pid, signal.SIGTERM, group)
    if problem:
        return StopResult(FAILED, f"could not be stopped: {problem}; PID file kept")
    if _gone_within(pid, grace_seconds):
        _sweep(pid, group)
        _forget(run_dir, name)
        return StopResult(STOPPED, f"stopped (PID {pid}{alone}, {_secs(time.monotonic() - began)})")
    descendants = [] if group else _descendants(pid)  # orphaned by SIGKILL otherwise
    problem = _send(pid, signal.SIGKILL, group)
    for child in descendants:
        _send(child, signal.SIGKILL, False)
    if problem:
        return StopResult(FAILED, f"could not be stopped: {problem}; PID file kept")
    if _gone_within(pid, kill_seconds):
        _sweep(pid, group)
        _forget(run_dir, name)
        why = f"PID {pid} did not exit on SIGTERM{alone}"
        return StopResult(KILLED, f"killed after {_secs(grace_seconds)} ({why})")
    return StopResult(
        FAILED,
        f"could not be stopped: PID {pid} is still there {_secs(kill_seconds)} after SIGKILL"
        f" (state {_state(pid)}); PID file kept",
    )


def log_tail(run_dir: Path, name: str, lines: int = 20) -> str:
    path = run_dir / "logs" / f"{name}.log"
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _pid_file(run_dir: Path, name: str) -> Path:
    return run_dir / "pids" / f"{name}.pid"


def _started_file(run_dir: Path, name: str) -> Path:
    return run_dir / "pids" / f"{name}.started"


def _forget(run_dir: Path, name: str) -> None:
    _pid_file(run_dir, name).unlink(missing_ok=True)
    _started_file(run_dir, name).unlink(missing_ok=True)


def _proc_stat(pid: int) -> list[str] | None:
    """/proc/PID/stat from its third field (the state) on; None without /proc."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _start_ticks(pid: int) -> int | None:
    """When the process started, in clock ticks since boot (field 22 of /proc/PID/stat)."""
    stat = _proc_stat(pid)
    try:
        return int(stat[19]) if stat else None
    except (IndexError, ValueError):
        return None


def _stranger(run_dir: Path, name: str, pid: int) -> str | None:
    """The command of the process holding PID when it is evidently not the one recorded
    (the PID was reused); None when it is, or when that cannot be told (no /proc)."""
    if pid <= 1 or pid == os.getpid():
        return _command(pid)
    ticks = _start_ticks(pid)
    if ticks is None:
        return None
    try:
        recorded_pid, recorded_ticks = map(int, _started_file(run_dir, name).read_text().split())
    except (OSError, ValueError):
        recorded_pid = recorded_ticks = None
    if recorded_pid == pid:  # spawn's record: exact
        return None if recorded_ticks == ticks else _command(pid)
    # A PID file written by hand: the process it names was running when it was written.
    try:
        written = _pid_file(run_dir, name).stat().st_mtime
        started = _boot_time() + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None
    return _command(pid) if started > written + CLOCK_SLACK_SECONDS else None


def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise ValueError("no btime in /proc/stat")


def _command(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        command = " ".join(part.decode(errors="replace") for part in argv)
    except OSError:
        command = ""
    command = command or f"PID {pid}"
    return command if len(command) <= 80 else command[:77] + "..."


def _leads_group(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except OSError:
        return False


def _send(pid: int, sig: signal.Signals, group: bool) -> str | None:
    """Signal the group PID leads, or the process alone; a reason when not permitted."""
    try:
        if group:
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:  # it left its group meanwhile
                os.kill(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        return None  # gone already
    except PermissionError:
        return f"not permitted to send {sig.name} to PID {pid} (owned by uid {_owner(pid)})"
    return None


def _sweep(pid: int, group: bool) -> None:
    """SIGKILL what is left of the group once its leader is gone (workers still exiting)."""
    if group:
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _descendants(pid: int) -> list[int]:
    """The process's children, grandchildren, ... (read from /proc; none without it)."""
    children: dict[int, list[int]] = {}
    with contextlib.suppress(OSError):
        for entry in Path("/proc").iterdir():
            stat = _proc_stat(int(entry.name)) if entry.name.isdigit() else None
            if stat and len(stat) > 1 and stat[1].isdigit():
                children.setdefault(int(stat[1]), []).append(int(entry.name))
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo += children.get(child, [])
    return found


def _owner(pid: int) -> str:
    try:
        return str(Path(f"/proc/{pid}").stat().st_uid)
    except OSError:
        return "?"


STATES = {"D": "D, uninterruptible sleep", "T": "T, stopped", "t": "t, traced"}


def _state(pid: int) -> str:
    stat = _proc_stat(pid)
    return STATES.get(stat[0], stat[0]) if stat else "unknown"


def _secs(seconds: float) -> str:
    return f"{seconds:.1f}".removesuffix(".0") + " s"
