"""The gateway's own errors; model_api's errors pass through as they are."""

from __future__ import annotations

from mlserve_common.runtime.errors import MLServeError, PayloadTooLargeError

__all__ = ["MLServeError", "PayloadTooLargeError"]


class UnauthorizedError(MLServeError):
    status_code = 401
    code = "unauthorized"


class UnknownModelError(MLServeError):
    status_code = 404
    code = "model_not_found"


class UnknownRouteError(MLServeError):
    status_code = 404
    code = "not_found"


class ModelApiUnavailableError(MLServeError):
    status_code = 503
    code = "model_api_unavailable"


class ModelApiTimeoutError(MLServeError):
    status_code = 504
    code = "model_api_timeout"


class GatewaySaturatedError(MLServeError):
    """Every connection to model_api stayed busy: truly saturated, so come back shortly."""

    status_code = 503
    code = "gateway_saturated"
    headers = {"Retry-After": "1"}
