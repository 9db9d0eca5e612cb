"""model_api's Prometheus metrics, summed over every worker process.

Under `mlserve_common.server.serve` each worker writes its samples into the folder named by
PROMETHEUS_MULTIPROC_DIR, and `/metrics` (answered by any worker) reads them all: totals for
the deployment's process, not for the worker that happened to answer. In a single process
(tests) the default registry is used.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

INFERENCES = Counter("mlserve_inferences", "Images the model computed an answer for.", ["model"])
BATCHES = Histogram(
    "mlserve_batch_size",
    "Images per session run.",
    ["model"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
REQUESTS = Histogram(
    "mlserve_request_duration_seconds",
    "Predictions answered, by whether the cache had them, and how long each took.",
    ["model", "cached"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CACHE_HITS = Counter("mlserve_cache_hits", "Predictions answered from the cache.", ["model"])
CACHE_MISSES = Counter("mlserve_cache_misses", "Lookups the cache could not answer.", ["model"])
CACHE_ERRORS = Counter("mlserve_cache_errors", "Redis calls that failed.")
CACHE_UP = Gauge("mlserve_cache_up", "1 while Redis answers.", multiprocess_mode="livemin")
QUEUE_DEPTH = Gauge(
    "mlserve_queue_depth", "Images waiting for a batch.", ["model"], multiprocess_mode="livesum"
)
REJECTED = Counter(
    "mlserve_queue_rejections", "Requests refused with 503 because the queue was full.", ["model"]
)
ABANDONED = Counter(
    "mlserve_abandoned",
    "Misses whose client left (disconnected, or the gateway gave up) before the answer: "
    "`dropped` before any work started (no inference), `finished` while their inference "
    "ran (it completed and its answer went to the cache).",
    ["model", "outcome"],
)
SHARED = Counter(
    "mlserve_singleflight_waits",
    "Misses that waited for an identical request's inference instead of running their own, "
    "by where the leader was (this process, or another worker or replica through Redis).",
    ["model", "level"],
)


def render() -> tuple[bytes, str]:
    """The exposition text of every worker's metrics, and its content type."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=folder)
    else:
        registry = REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST


def mark_worker_gone(pid: int) -> None:
    """Drop a finished worker's live gauges (its counters stay in the totals)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
