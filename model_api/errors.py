"""model_api's errors: each carries its HTTP status and a message for people."""

from __future__ import annotations

from mlserve_common.runtime.errors import InvalidRequestError, MLServeError, PayloadTooLargeError

__all__ = ["InvalidRequestError", "MLServeError", "PayloadTooLargeError"]


class EmptyRequestError(MLServeError):
    status_code = 400
    code = "empty_request"


class InvalidImageError(MLServeError):
    status_code = 400
    code = "invalid_image"


class NoContentError(MLServeError):
    """The image is blank: the model's config asks for content before it guesses."""

    status_code = 422
    code = "no_content"


class InvalidParameterError(MLServeError):
    status_code = 422
    code = "invalid_request"


class ModelNotFoundError(MLServeError):
    status_code = 404
    code = "model_not_found"


class UnsupportedMediaTypeError(MLServeError):
    status_code = 415
    code = "unsupported_media_type"


class ModelNotReadyError(MLServeError):
    status_code = 503
    code = "model_not_ready"
    headers = {"Retry-After": "1"}


class ProtectedModelError(MLServeError):
    """The stack's own MODEL_NAME cannot be unloaded: `/predict` serves it."""

    status_code = 409
    code = "model_protected"


class OverloadedError(MLServeError):
    """The batch queue is full: come back shortly rather than wait without bound."""

    status_code = 503
    code = "overloaded"
    headers = {"Retry-After": "1"}


class ReloadNotFollowedError(MLServeError):
    """A reload did not reach every worker in time: the old model may still answer there."""

    status_code = 503
    code = "reload_incomplete"
    headers = {"Retry-After": "1"}


class NotCachedError(MLServeError):
    """Asked by content: no answer is stored for that image (upload it to get one)."""

    status_code = 404
    code = "not_cached"


class CacheUnavailableError(MLServeError):
    """Asked by content while the cache cannot be read."""

    status_code = 503
    code = "cache_unavailable"
    headers = {"Retry-After": "1"}
