"""Prometheus metrics summed over a service's worker processes, served by any of them.

Under `mlserve_common.runtime.server.serve` each worker writes its samples into the folder named by
PROMETHEUS_MULTIPROC_DIR, and `/metrics` (answered by any worker) reads them all: totals for
the service, not for the worker that happened to answer. In a single process (tests) the
default registry is used. Import this module before defining a metric.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Each write of a multiprocess value asks the OS for the pid, to notice a fork; our
    # workers are spawned, never forked, so the pid is read once (the check was a system
    # call per metric write, a visible share of a cache hit's CPU in profiles).
    _PID = os.getpid()
    values.ValueClass = values.MultiProcessValue(lambda: _PID)


def render() -> tuple[bytes, str]:
    """The exposition text of every worker's metrics, and its content type."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=folder)
    else:
        registry = REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST
