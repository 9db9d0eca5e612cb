"""Start a server in its own process group, wait until it answers, stop the whole group.

Also the memory facts the report needs: the RSS of every process in a server's tree.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]


class StartError(RuntimeError):
    """A server did not come up; the message ends with the end of its log."""


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError):
        return False


def process_tree(pid: int) -> list[psutil.Process]:
    """The process and all its descendants (empty when it is gone)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def tree_memory(pid: int) -> list[dict]:
    """pid, RSS in MB and a short command line for every process in the tree of `pid`."""
    facts = []
    for process in process_tree(pid):
        try:
            facts.append(
                {
                    "pid": process.pid,
                    "rss_mb": round(process.memory_info().rss / 2**20, 1),
                    "cmd": " ".join(process.cmdline())[:160],
                }
            )
        except psutil.Error:
            continue
    return facts


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """CPU time (user + system) each process has used so far; gone processes are left out."""
    used = {}
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
            used[pid] = times.user + times.system
        except psutil.Error:
            continue
    return used


class ServerProcess:
    """One command started in its own session, so stop() reaches every child it spawned."""

    def __init__(
        self, argv: list[str], env: dict[str, str], log_path: Path, health_url: str
    ) -> None:
        self.argv, self.env, self.log_path, self.health_url = argv, env, log_path, health_url
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 120.0) -> None:
        """Start and wait until the health URL answers 2xx; StartError otherwise."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise StartError(f"exited with {code}:\n{log_tail(self.log_path)}")
            if http_ok(self.health_url):
                return
            time.sleep(0.25)
        self.stop()
        raise StartError(f"not ready after {timeout:.0f} s:\n{log_tail(self.log_path)}")

    def stop(self, timeout: float = 20.0) -> None:
        """SIGKILL the process group and every descendant (BentoML puts its workers in
        groups of their own), then wait until all are gone. Not SIGTERM: a graceful drain
        is not what is measured, and after SIGTERM the API server processes of LitServe
        0.2.19 spin at 100% CPU for ~30 s, starving whatever runs next."""
        if self.process is None:
            return
        tree = process_tree(self.process.pid)
        _signal_all(self.process.pid, tree, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _any_alive(self.process, tree):
            time.sleep(0.1)
        self.process.wait(timeout=5)
        self.process = None

    def memory(self) -> list[dict]:
        return tree_memory(self.process.pid) if self.process else []


def _signal_all(group: int, tree: list[psutil.Process], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, sig)
    for process in tree:
        with contextlib.suppress(psutil.Error):
            process.send_signal(sig)


def _any_alive(leader: subprocess.Popen, tree: list[psutil.Process]) -> bool:
    """True while a process of the tree runs or is still tearing down its threads (a zombie
    with threads left takes CPU from the next server); dead zombies wait for init to reap."""
    leader.poll()
    return leader.returncode is None or any(_running(p) for p in tree[1:])


def _running(process: psutil.Process) -> bool:
    try:
        if process.status() != psutil.STATUS_ZOMBIE:
            return True
        return len(os.listdir(f"/proc/{process.pid}/task")) > 1
    except (psutil.Error, OSError):
        return False
