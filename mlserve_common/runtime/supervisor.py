"""uvicorn's worker supervisor, with one listening socket per worker.

uvicorn's own supervisor binds one socket and every worker accepts from it. Whichever
worker wakes first accepts every connection waiting, so a burst of clients (a load
balancer, wrk, the gateway's pool opening connections) often lands mostly on one worker:
`ss -tnp` showed splits of 26/6 and 21/9, and once every connection on one worker while
the other idled. Keep-alive connections stay where they land, so the imbalance lasts.

Here each worker slot has its own socket, bound to the same port with SO_REUSEPORT, and
the kernel spreads new connections over the slots by a hash of their addresses (as
nginx's `reuseport` does). The supervisor holds every slot's socket for its whole life:
when a worker dies, connections that reach its slot wait in the socket's backlog for the
replacement instead of being refused, and none is lost.
"""

from __future__ import annotations

import logging
import socket

from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.supervisors.multiprocess import Multiprocess, Process

logger = logging.getLogger("uvicorn.error")


def reuse_port_socket(host: str, port: int, backlog: int) -> socket.socket:
    """A socket listening on `host:port` that other sockets of this process group may share.

    It listens from the start, before its worker runs: the kernel spreads connections over
    listening sockets only, so one whose worker is still starting would otherwise get none
    until then, and the first worker up would take every early client."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def bind_slots(host: str, port: int, count: int, backlog: int) -> list[socket.socket]:
    """`count` sockets on one port (port 0: a free one), or OSError if it is taken.

    With SO_REUSEPORT, a second service started on a port in use would share it silently
    with the first, so the port is first bound once without it: that fails if anyone
    holds it."""
    if port:
        with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    first = reuse_port_socket(host, port, backlog)
    port = first.getsockname()[1]
    return [first] + [reuse_port_socket(host, port, backlog) for _ in range(count - 1)]


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


class SocketPerWorker(Multiprocess):
    """uvicorn's Multiprocess, with worker `i` listening on `sockets[i]` alone: a
    replacement takes the socket of the worker it replaces."""

    def __init__(self, config: Config, sockets: list[socket.socket]) -> None:
        if len(sockets) != config.workers:
            raise ValueError(f"{config.workers} workers need as many sockets, not {len(sockets)}")
        super().__init__(config, sockets)

    def _spawn(self, slot: int) -> Process:
        process = Process(self.config, [self.sockets[slot]])
        process.start()
        return process

    def init_processes(self) -> None:
        self.processes = [self._spawn(slot) for slot in range(self.processes_num)]

    def keep_subprocess_alive(self) -> None:
        for slot, process in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()  # hung, or already dead
            process.join()
            if process.exitcode == STARTUP_FAILURE:  # the app cannot start: no use retrying
                logger.error("Worker [%s] failed to start, stopping.", process.pid)
                self.should_exit.set()
                return
            logger.info("Worker [%s] died; starting its replacement", process.pid)
            self.processes[slot] = self._spawn(slot)

    def restart_all(self) -> None:
        """SIGHUP: replace each worker in turn, the new one serving before the old stops.
        The old one drains without losing a request (`GuardedHttpProtocol.shutdown`)."""
        for slot, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new = self._spawn(slot)
            if not new.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit):
                new.kill()
                new.join()
                logger.error("Worker [%s] was not ready in time; restart aborted", new.pid)
                return
            old.terminate()
            old.join()
            self.processes[slot] = new

    def handle_ttin(self) -> None:
        logger.info("SIGTTIN ignored: the number of workers is fixed (MLSERVE_WORKERS)")

    def handle_ttou(self) -> None:
        logger.info("SIGTTOU ignored: the number of workers is fixed (MLSERVE_WORKERS)")
