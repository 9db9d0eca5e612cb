"""The gateway's Prometheus metrics, summed over its worker processes (see
`mlserve_common.metrics_export`): what its reads of the prediction cache found."""

from __future__ import annotations

from prometheus_client import Counter

from mlserve_common.metrics_export import render

LOOKUPS = Counter(
    "mlserve_gateway_cache_lookups",
    "The gateway's reads of the prediction cache, by result: `hit` (answered at the door), "
    "`miss` (forwarded to model_api), `error` (Redis failed; forwarded), `skipped` (Redis "
    "was failing a moment ago; forwarded without asking), `bypassed` (the last lookups all "
    "found nothing; forwarded without asking, model_api looks it up).",
    ["model", "result"],
)

__all__ = ["LOOKUPS", "render"]
