"""Run a service's app factory under uvicorn, the same way for every MLServe service."""

from __future__ import annotations

import uvicorn

from mlserve_common.observability import setup_logging

GRACEFUL_SHUTDOWN_SECONDS = 30  # in-flight requests finish on SIGTERM (docker stops after 35 s)


def serve(factory: str, host: str, port: int, log_level: str) -> None:
    """Serve `module:create_app` with request-id logging and a graceful drain on SIGTERM."""
    setup_logging(log_level)
    uvicorn.run(
        factory,
        factory=True,
        host=host,
        port=port,
        log_config=None,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        proxy_headers=False,
        server_header=False,
    )
