"""Run a service's app factory under uvicorn, the same way for every MLServe service.

With more than one worker, a supervisor (uvicorn's, with one listening socket per worker:
see `supervisor`) spawns that many processes and replaces any that dies. Each worker:
- dies with the supervisor (a `kill -9` of the service leaves no orphan holding the port);
- writes its Prometheus metrics into one shared folder, so `/metrics` reports totals;
- finds in MLSERVE_SHARED_DIR a folder for state all workers follow (the models loaded).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from mlserve_common.runtime import tracing
from mlserve_common.runtime.http_limits import HttpLimits
from mlserve_common.runtime.http_protocol import GuardedHttpProtocol
from mlserve_common.runtime.logs import LogSettings, setup_logging
from mlserve_common.runtime.observability import WORKER_COUNT_ENV
from mlserve_common.runtime.supervisor import SocketPerWorker, bind_slots

GRACEFUL_SHUTDOWN_SECONDS = 30  # in-flight requests finish on SIGTERM (docker stops after 35 s)
WORKER_PING_TIMEOUT_SECONDS = 30
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
SUPERVISOR_ENV = "MLSERVE_SUPERVISOR_PID"
SHARED_DIR_ENV = "MLSERVE_SHARED_DIR"  # state the workers share (model_api: models loaded)
_PR_SET_PDEATHSIG = 1


def serve(
    factory: str,
    host: str,
    port: int,
    logs: LogSettings,
    workers: int = 1,
    limits: HttpLimits | None = None,
) -> None:
    """Serve `module:create_app` in `workers` processes, with request-id logging, metrics
    summed over the workers, the HTTP `limits` on every connection and a graceful drain on
    SIGTERM."""
    limits = limits or HttpLimits()
    limits.export()  # for the workers' GuardedHttpProtocol
    setup_logging(logs, service=factory.split(".", 1)[0])
    metrics_dir = tempfile.mkdtemp(prefix="mlserve-metrics-")
    os.environ[METRICS_DIR_ENV] = metrics_dir
    shared_dir = tempfile.mkdtemp(prefix="mlserve-shared-")
    os.environ[SHARED_DIR_ENV] = shared_dir
    os.environ[SUPERVISOR_ENV] = str(os.getpid())
    os.environ[WORKER_COUNT_ENV] = str(workers)
    config = uvicorn.Config(
        factory,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,  # RequestIdMiddleware writes the access line, with its duration
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        http=GuardedHttpProtocol,
        timeout_keep_alive=limits.keep_alive_seconds,
        # uvicorn kills a worker that misses its health ping for this long; its 5 s
        # default killed busy, healthy workers on a loaded 2-core machine.
        timeout_worker_healthcheck=WORKER_PING_TIMEOUT_SECONDS,
        proxy_headers=False,
        server_header=False,
    )
    try:
        if workers > 1:
            SocketPerWorker(config, _bind(host, port, workers, config.backlog)).run()
        else:
            config.load_app()
            server = uvicorn.Server(config)
            server.run()
            if not server.started:
                sys.exit(STARTUP_FAILURE)
    except KeyboardInterrupt:
        pass
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
        shutil.rmtree(shared_dir, ignore_errors=True)


def _bind(host: str, port: int, workers: int, backlog: int) -> list[socket.socket]:
    """One socket per worker on `host:port`, or exit as uvicorn does when it cannot listen."""
    try:
        sockets = bind_slots(host, port, workers, backlog)
    except OSError as exc:
        logging.getLogger("uvicorn.error").error("cannot listen on %s:%s: %s", host, port, exc)
        sys.exit(STARTUP_FAILURE)
    logging.getLogger("uvicorn.error").info(
        "Listening on http://%s:%d, %d workers with a socket each",
        host,
        sockets[0].getsockname()[1],
        workers,
    )
    return sockets


def init_worker(logs: LogSettings, service: str) -> None:
    """Called by each app factory: in a worker that `serve` spawned, set up its logging
    (a spawned process starts bare) and tie its life to the supervisor's."""
    supervisor = os.environ.get(SUPERVISOR_ENV, "")
    if not supervisor.isdigit():
        return  # not under serve() (a TestClient in tests): leave logging alone
    tracing.configure(service)  # first: with traces, every log line names its trace
    setup_logging(logs, service)
    if int(supervisor) == os.getpid():
        return  # one process: nothing above it to outlive
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(supervisor):  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)
