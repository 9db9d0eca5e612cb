"""Stopping the local stack's processes with real processes: a PID that leads its group,
one that leads none (a service restarted by hand), one that ignores SIGTERM, one already
gone, one reused by a stranger. Every stop is bounded in time: none may hang."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness import ROOT
from stackctl import local_mode, processes
from stackctl.processes import FAILED, KILLED, NOT_RUNNING, STOPPED, StopResult, terminate
from stackctl.settings import StackSettings

SERVICE = "db_api"
IGNORE_TERM = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
WITH_WORKER = (
    "import subprocess; w = subprocess.Popen(['sleep', '60']); print('worker', w.pid, flush=True)\n"
)
RECORDED = "import os, time; print('recorded', os.getpid(), flush=True); time.sleep(60)\n"
PARENT = (
    "import subprocess, sys, time\n"
    "subprocess.Popen([sys.executable, '-c', sys.argv[1]])  # same process group: leads none\n"
    "time.sleep(60)\n"
)


class Launched:
    """Processes this test started: a session of their own, so cleanup reaches them all."""

    def __init__(self, code: str, leader: bool) -> None:
        argv = [sys.executable, "-c", code] if leader else [sys.executable, "-c", PARENT, code]
        self.top = subprocess.Popen(
            argv, stdout=subprocess.PIPE, bufsize=0, start_new_session=True
        )  # unbuffered: select() sees every line
        self.pids: dict[str, int] = {}
        self._read(("recorded", "worker") if "worker" in code else ("recorded",))

    def _read(self, labels: tuple[str, ...], seconds: float = 15.0) -> None:
        deadline = time.monotonic() + seconds
        assert self.top.stdout is not None
        while not all(label in self.pids for label in labels):
            ready, _, _ = select.select([self.top.stdout], [], [], deadline - time.monotonic())
            assert ready, f"no {labels} from the test's processes within {seconds} s"
            label, pid = self.top.stdout.readline().decode().split()
            self.pids[label] = int(pid)

    @property
    def recorded(self) -> int:
        return self.pids["recorded"]

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.top.pid, signal.SIGKILL)  # the session this test started
        self.top.wait(10)
        reap_children()


@pytest.fixture
def launch() -> Iterator[Callable[[str, bool], Launched]]:
    started: list[Launched] = []

    def start(code: str, leader: bool) -> Launched:
        started.append(Launched(code, leader))
        return started[-1]

    yield start
    for launched in started:
        launched.close()


def reap_children() -> None:
    """Reap the zombies of processes this test process started (spawn's, the leaders)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def record(run_dir: Path, pid: int, name: str = SERVICE) -> Path:
    """Write the PID file as a person who restarted the service by hand would."""
    (run_dir / "pids").mkdir(parents=True, exist_ok=True)
    pid_file = run_dir / "pids" / f"{name}.pid"
    pid_file.write_text(f"{pid}\n")
    return pid_file


def bounded(run_dir: Path, seconds: float, **kwargs: float) -> tuple[StopResult, float]:
    """terminate() in a thread that must finish within `seconds`, and how long it took."""
    outcome: list[StopResult] = []
    began = time.monotonic()
    thread = threading.Thread(
        target=lambda: outcome.append(terminate(run_dir, SERVICE, **kwargs)), daemon=True
    )
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"terminate() still waiting after {seconds} s"
    return outcome[0], time.monotonic() - began


def gone(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while processes.alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not processes.alive(pid)


def test_a_spawned_service_stops_with_its_workers(tmp_path: Path) -> None:
    code = WITH_WORKER + RECORDED
    pid = processes.spawn(SERVICE, [sys.executable, "-c", code], dict(os.environ), tmp_path, ROOT)
    log = tmp_path / "logs" / f"{SERVICE}.log"
    deadline = time.monotonic() + 15
    while "recorded" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    worker = int(log.read_text().split("worker")[1].split()[0])
    try:
        assert processes.running(tmp_path, SERVICE)
        result, took = bounded(tmp_path, 10)
        assert result.outcome == STOPPED and result
        assert result.message.startswith(f"stopped (PID {pid}, ")
        assert "not a process-group leader" not in result.message
        assert took < 5
        assert gone(pid) and gone(worker), "the whole group goes"
        assert not list((tmp_path / "pids").iterdir()), "its PID files are removed"
    finally:
        for leftover in (pid, worker):
            if processes.alive(leftover):
                os.kill(leftover, signal.SIGKILL)
        reap_children()


def test_stop_all_signals_a_pid_that_leads_no_group(tmp_path: Path, launch) -> None:
    """Issue 27's hang: Redis restarted by hand, its PID not its group's leader."""
    service = launch(RECORDED, False)
    pid = service.recorded
    assert os.getpgid(pid) != pid
    pid_file = record(tmp_path, pid)
    env = {**os.environ, "MLSERVE_RUN_DIR": str(tmp_path), "MLSERVE_MODE": "local"}
    began = time.monotonic()
    stopped = subprocess.run(
        [str(ROOT / "stop_all.sh")], env=env, capture_output=True, text=True, timeout=30
    )
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert time.monotonic() - began < 15
    lines = stopped.stdout.splitlines()
    assert lines[:2] == ["web_api: was not running", "model_api: was not running"]
    assert lines[2].startswith(
        f"db_api: stopped (PID {pid}, not a process-group leader: signalled alone, "
    ), lines
    assert gone(pid)
    assert service.top.poll() is None, "its parent (the group's leader) is left alone"
    assert not pid_file.exists()


@pytest.mark.parametrize("leader", [True, False], ids=["group-leader", "not-a-leader"])
def test_a_pid_that_ignores_sigterm_is_killed_within_the_deadline(
    tmp_path: Path, launch, leader: bool
) -> None:
    service = launch(IGNORE_TERM + WITH_WORKER + RECORDED, leader)
    pid, worker = service.recorded, service.pids["worker"]
    record(tmp_path, pid)
    result, took = bounded(tmp_path, 10, grace_seconds=1.0, kill_seconds=5.0)
    assert result.outcome == KILLED and result
    assert result.message.startswith(f"killed after 1 s (PID {pid} did not exit on SIGTERM"), result
    assert 1.0 <= took < 4
    assert gone(pid) and gone(worker), "its worker is not left behind"


def test_a_pid_already_gone_is_not_running(tmp_path: Path, launch) -> None:
    service = launch(RECORDED, True)
    pid = service.recorded
    pid_file = record(tmp_path, pid)
    os.kill(pid, signal.SIGKILL)
    service.top.wait(10)
    result, took = bounded(tmp_path, 5)
    assert (result.outcome, result.message) == (
        NOT_RUNNING,
        f"was not running (PID {pid} had exited)",
    )
    assert not result and took < 1
    assert not pid_file.exists()


def test_no_pid_file_or_a_bad_one_is_not_running(tmp_path: Path) -> None:
    assert bounded(tmp_path, 5)[0] == StopResult(NOT_RUNNING, "was not running")
    for bad in ("", "nonsense", "0", "-1"):
        (tmp_path / "pids").mkdir(exist_ok=True)
        (tmp_path / "pids" / f"{SERVICE}.pid").write_text(bad)
        result, _ = bounded(tmp_path, 5)
        assert result == StopResult(NOT_RUNNING, "was not running (unreadable PID file removed)")
        assert not (tmp_path / "pids" / f"{SERVICE}.pid").exists()


def test_a_pid_now_held_by_a_stranger_is_left_alone(tmp_path: Path, launch) -> None:
    """spawn's record of the start time no longer matches: the PID was reused."""
    stranger = launch(RECORDED, True)
    pid = stranger.recorded
    record(tmp_path, pid)
    ticks = processes._start_ticks(pid)
    assert ticks is not None
    (tmp_path / "pids" / f"{SERVICE}.started").write_text(f"{pid} {ticks - 1}\n")
    assert not processes.running(tmp_path, SERVICE)
    result, took = bounded(tmp_path, 5)
    assert result.outcome == NOT_RUNNING and took < 1
    assert result.message.startswith(f"was not running (PID {pid} is now another process, left ")
    assert sys.executable in result.message
    assert processes.alive(pid), "not signalled"
    assert not list((tmp_path / "pids").iterdir())


def test_a_hand_written_pid_file_older_than_its_process_is_a_stranger(
    tmp_path: Path, launch
) -> None:
    """No record of spawn's: a process started after its PID file was written is not it."""
    stranger = launch(RECORDED, True)
    pid_file = record(tmp_path, stranger.recorded)
    assert processes.running(tmp_path, SERVICE)  # written after the process started: it
    an_hour_ago = time.time() - 3600
    os.utime(pid_file, (an_hour_ago, an_hour_ago))
    result, _ = bounded(tmp_path, 5)
    assert result.outcome == NOT_RUNNING and "is now another process" in result.message
    assert processes.alive(stranger.recorded)


def test_a_pid_that_survives_sigkill_is_given_up_on(
    tmp_path: Path, launch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never a wait without a deadline: a process that outlives SIGKILL (uninterruptible
    sleep, say; simulated here) is reported and its PID file kept for another try."""
    service = launch(IGNORE_TERM + RECORDED, True)
    pid = service.recorded
    pid_file = record(tmp_path, pid)
    monkeypatch.setattr(processes, "alive", lambda _pid: True)
    result, took = bounded(tmp_path, 10, grace_seconds=0.5, kill_seconds=0.5)
    assert result.outcome == FAILED and not result
    assert result.message.startswith(
        f"could not be stopped: PID {pid} is still there 0.5 s after SIGKILL (state "
    )
    assert result.message.endswith("; PID file kept")
    assert took < 3
    assert pid_file.exists()


def test_stop_says_what_it_did_and_fails_when_a_service_could_not_be_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    results = {
        "web_api": StopResult(STOPPED, "stopped (PID 10, 0.2 s)"),
        "model_api": StopResult(KILLED, "killed after 30 s (PID 11 did not exit on SIGTERM)"),
        "db_api": StopResult(FAILED, "could not be stopped: not permitted to send SIGTERM"),
    }
    monkeypatch.setattr(local_mode, "terminate", lambda _run_dir, name: results[name])
    assert local_mode.stop(StackSettings(run_dir=tmp_path)) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{name}: {result.message}" for name, result in results.items()
    ]
    del results["db_api"]
    results["db_api"] = StopResult(NOT_RUNNING, "was not running")
    assert local_mode.stop(StackSettings(run_dir=tmp_path)) == 0


def test_stackctl_imports_with_the_standard_library_only() -> None:
    """stackctl runs before any virtualenv exists: no site-packages (-S), no PYTHONPATH."""
    code = (
        "import sys, stackctl.__main__\n"
        "first_party = ('stackctl', 'mlserve_common', '__main__')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] not in"
        " (*sys.stdlib_module_names, *first_party)))"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    result = subprocess.run(
        [sys.executable, "-S", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
