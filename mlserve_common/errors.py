"""Errors modelled once: a base error with its HTTP status, and one JSON envelope.

Each service subclasses `MLServeError`; `install_error_handlers` answers every
exception as `{"error", "code", "request_id"}`, never with a traceback.
"""

from __future__ import annotations

import logging
import time

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("mlserve")


class MLServeError(Exception):
    """Base error: `status_code` and `code` are per class, the message per instance."""

    status_code = 500
    code = "internal_error"
    headers: dict[str, str] | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequestError(MLServeError):
    status_code = 400
    code = "invalid_request"


class PayloadTooLargeError(MLServeError):
    status_code = 413
    code = "payload_too_large"


class UploadsBusyError(MLServeError):
    """Too many request bodies are held at once: come back shortly."""

    status_code = 503
    code = "busy"
    headers = {"Retry-After": "1"}


class ClientDisconnectedError(MLServeError):
    """The client left before its answer (nginx's 499: nobody receives this answer)."""

    status_code = 499
    code = "client_disconnected"


def error_body(request: Request, code: str, message: str) -> dict:
    """The one JSON shape of every error answer."""
    return error_body_for(getattr(request.state, "request_id", None), code, message)


def error_body_for(request_id: str | None, code: str, message: str) -> dict:
    return {"error": message, "code": code, "request_id": request_id}


class _ThrottledLog:
    """Logs a failure's first occurrence, then at most once per `interval` per code, with
    how many were not logged in between: a burst of 503s is a few lines, not thousands."""

    def __init__(self, interval: float = 10.0) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}
        self._unlogged: dict[str, int] = {}

    def __call__(self, level: int, code: str, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last.get(code, -self.interval) < self.interval:
            self._unlogged[code] = self._unlogged.get(code, 0) + 1
            return
        self._last[code] = now
        skipped = self._unlogged.pop(code, 0)
        if skipped:
            message += " (and %d more %s since the last such line)"
            args = (*args, skipped, code)
        log.log(level, message, *args)


log_throttled = _ThrottledLog()
"""Log a failure, at most once per 10 s per code (with a count of the rest)."""


def log_error(method: str, path: str, exc: MLServeError) -> None:
    """A line for an error answer: 5xx at WARNING, throttled per code; the rest at INFO."""
    args = (method, path, exc.status_code, exc.code, exc.message)
    if exc.status_code >= 500:
        log_throttled(logging.WARNING, exc.code, "%s %s -> %d %s: %s", *args)
    else:
        log.info("%s %s -> %d %s: %s", *args)


def error_response(request: Request, exc: MLServeError) -> JSONResponse:
    """The answer to a known error. Access logs are off by default (they cost as much as a
    cache hit), so errors still leave a line, with the request id the log format adds;
    server-side failures (5xx) at WARNING, throttled per code."""
    log_error(request.method, request.url.path, exc)
    return JSONResponse(
        error_body(request, exc.code, exc.message), exc.status_code, headers=exc.headers
    )


def install_error_handlers(app: FastAPI) -> None:
    """Turn every exception into `{"error", "code", "request_id"}`; never a traceback."""

    @app.exception_handler(MLServeError)
    async def _known(request: Request, exc: MLServeError) -> JSONResponse:
        return error_response(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(request, code, str(exc.detail)), exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()
        )
        return JSONResponse(error_body(request, "invalid_request", problems), 422)

    @app.exception_handler(Exception)
    async def _unknown(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error (request %s)", getattr(request.state, "request_id", "-"))
        return JSONResponse(error_body(request, "internal_error", "Internal server error"), 500)
