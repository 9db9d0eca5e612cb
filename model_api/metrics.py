"""model_api's Prometheus metrics, summed over every worker process (see
`mlserve_common.runtime.metrics_export`)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram

from mlserve_common.runtime.metrics_export import render

MODEL = ["model", "version"]
"""Every per-model metric is labelled with the model's name and its version (folder name)."""
LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

INFERENCES = Counter("mlserve_inferences", "Images the model computed an answer for.", MODEL)
EXECUTIONS = Counter("mlserve_executions", "Session runs (a batch is one run).", MODEL)
BATCHES = Histogram(
    "mlserve_batch_size",
    "Images per session run.",
    MODEL,
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
SUCCESSES = Counter("mlserve_request_success", "Prediction requests answered.", MODEL)
FAILURES = Counter(
    "mlserve_request_failure", "Prediction requests that failed, by error code.", [*MODEL, "code"]
)
IN_FLIGHT = Gauge(
    "mlserve_requests_in_flight",
    "Prediction requests being answered right now.",
    MODEL,
    multiprocess_mode="livesum",
)
REQUESTS = Histogram(
    "mlserve_request_duration_seconds",
    "Predictions answered, by whether the cache had them, and how long each took.",
    [*MODEL, "cached"],
    buckets=LATENCY,
)
QUEUE_SECONDS = Histogram(
    "mlserve_queue_duration_seconds",
    "How long an image waited for a decoding thread or a batch before its work started.",
    MODEL,
    buckets=LATENCY,
)
COMPUTE_SECONDS = Histogram(
    "mlserve_compute_duration_seconds",
    "How long each session run took.",
    MODEL,
    buckets=LATENCY,
)
CACHE_HITS = Counter("mlserve_cache_hits", "Predictions answered from the cache.", MODEL)
CACHE_MISSES = Counter("mlserve_cache_misses", "Lookups the cache could not answer.", MODEL)
CACHE_LOOKUP_SECONDS = Histogram(
    "mlserve_cache_lookup_duration_seconds",
    "How long each cache lookup (Redis round trip) took.",
    MODEL,
    buckets=LATENCY,
)
SERVED = Gauge(
    "mlserve_model_served",
    "1 for the model digest each model version answers with now, 0 for one it answered "
    "with before a reload: which model produced the answers counted under `model` and "
    "`version` (join on them).",
    [*MODEL, "digest"],
    multiprocess_mode="livemax",
)
CACHE_ERRORS = Counter("mlserve_cache_errors", "Redis calls that failed.")
CACHE_UP = Gauge("mlserve_cache_up", "1 while Redis answers.", multiprocess_mode="livemin")
QUEUE_DEPTH = Gauge(
    "mlserve_queue_depth", "Images waiting for a batch.", MODEL, multiprocess_mode="livesum"
)
REJECTED = Counter(
    "mlserve_queue_rejections", "Requests refused with 503 because the queue was full.", MODEL
)
ABANDONED = Counter(
    "mlserve_abandoned",
    "Misses whose client left (disconnected, or the gateway gave up) before the answer: "
    "`dropped` before any work started (during the cache lookup or in the queue: no "
    "inference), `finished` while their inference ran (it completed and its answer went to "
    "the cache).",
    [*MODEL, "outcome"],
)
SHARED = Counter(
    "mlserve_singleflight_waits",
    "Misses that waited for an identical request's inference instead of running their own, "
    "by where the leader was (this process, or another worker or replica through Redis).",
    [*MODEL, "level"],
)


@dataclass(frozen=True)
class ModelMetrics:
    """One model version's metrics, labelled once."""

    inferences: Counter
    executions: Counter
    batch_sizes: Histogram
    successes: Counter
    in_flight: Gauge
    hit_seconds: Histogram
    miss_seconds: Histogram
    queue_seconds: Histogram
    compute_seconds: Histogram
    hits: Counter
    misses: Counter
    lookup_seconds: Histogram
    queue_depth: Gauge
    rejected: Counter
    dropped: Counter
    finished: Counter
    waits_here: Counter
    waits_elsewhere: Counter
    name: str
    version: str

    def failure(self, code: str) -> Counter:
        return FAILURES.labels(self.name, self.version, code)


def for_model(name: str, version: str) -> ModelMetrics:
    labels = (name, version)
    return ModelMetrics(
        inferences=INFERENCES.labels(*labels),
        executions=EXECUTIONS.labels(*labels),
        batch_sizes=BATCHES.labels(*labels),
        successes=SUCCESSES.labels(*labels),
        in_flight=IN_FLIGHT.labels(*labels),
        hit_seconds=REQUESTS.labels(*labels, "true"),
        miss_seconds=REQUESTS.labels(*labels, "false"),
        queue_seconds=QUEUE_SECONDS.labels(*labels),
        compute_seconds=COMPUTE_SECONDS.labels(*labels),
        hits=CACHE_HITS.labels(*labels),
        misses=CACHE_MISSES.labels(*labels),
        lookup_seconds=CACHE_LOOKUP_SECONDS.labels(*labels),
        queue_depth=QUEUE_DEPTH.labels(*labels),
        rejected=REJECTED.labels(*labels),
        dropped=ABANDONED.labels(*labels, "dropped"),
        finished=ABANDONED.labels(*labels, "finished"),
        waits_here=SHARED.labels(*labels, "process"),
        waits_elsewhere=SHARED.labels(*labels, "redis"),
        name=name,
        version=version,
    )


__all__ = ["render"]
