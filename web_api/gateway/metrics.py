"""The gateway's Prometheus metrics, summed over its worker processes (see
`mlserve_common.runtime.metrics_export`): what its reads of the prediction cache found."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from mlserve_common.runtime.metrics_export import render

LOOKUPS = Counter(
    "mlserve_gateway_cache_lookups",
    "The gateway's reads of the prediction cache, by result: `hit` (answered at the door), "
    "`miss` (forwarded to model_api), `error` (Redis failed; forwarded), `skipped` (Redis "
    "was failing a moment ago; forwarded without asking), `bypassed` (the last lookups all "
    "found nothing; forwarded without asking, model_api looks it up), `stale` (the model was "
    "reloaded since the gateway learnt its digest; forwarded).",
    ["model", "result"],
)

FORWARDED_TOGETHER = Histogram(
    "mlserve_gateway_forwarded_images_per_call",
    "Images the gateway sent to model_api in one call (those that came in the same turn of "
    "its event loop; see web_api/gateway/coalescer.py).",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)

GRPC_REQUESTS = Counter(
    "mlserve_gateway_grpc_requests",
    "Calls to the gateway's gRPC front end (the Open Inference Protocol), by RPC and by the "
    "status code answered (`OK`, `INVALID_ARGUMENT`, `DEADLINE_EXCEEDED`, ...).",
    ["method", "code"],
)

GRPC_SECONDS = Histogram(
    "mlserve_gateway_grpc_request_seconds",
    "How long the gateway took to answer a gRPC call, by RPC.",
    ["method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

__all__ = ["FORWARDED_TOGETHER", "GRPC_REQUESTS", "GRPC_SECONDS", "LOOKUPS", "render"]
