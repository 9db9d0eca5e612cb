"""Errors modelled once: a base error with its HTTP status, and one JSON envelope.

Each service subclasses `MLServeError`; `install_error_handlers` answers every
exception as `{"error", "code", "request_id"}`, never with a traceback.
"""

from __future__ import annotations

import contextlib
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
    """Logs a failure's first occurrence, then at most once per `interval` per cause (a
    code, or an unexpected exception's type and place), with how many were not logged in
    between: a burst of 503s is a few lines, not thousands."""

    def __init__(self, interval: float = 10.0, max_causes: int = 4096) -> None:
        self.interval = interval
        self.max_causes = max_causes
        self._last: dict[str, float] = {}
        self._unlogged: dict[str, int] = {}

    def admit(self, cause: str) -> int | None:
        """None: not to be logged now (counted); else a line may be logged, and this many
        of the cause went unlogged since its last line."""
        now = time.monotonic()
        if now - self._last.get(cause, -self.interval) < self.interval:
            self._unlogged[cause] = self._unlogged.get(cause, 0) + 1
            return None
        if cause not in self._last and len(self._last) >= self.max_causes:
            self._forget(now)
        self._last[cause] = now
        return self._unlogged.pop(cause, 0)

    def _forget(self, now: float) -> None:
        """Causes come from code, not from clients, but their number is bounded anyway:
        drop the quiet ones (and, if all are recent, all of them)."""
        for cause in [c for c, at in self._last.items() if now - at >= self.interval]:
            del self._last[cause]
            self._unlogged.pop(cause, None)
        if len(self._last) >= self.max_causes:
            self._last.clear()
            self._unlogged.clear()

    def __call__(
        self, level: int, code: str, message: str, *args: object, extra: dict | None = None
    ) -> None:
        skipped = self.admit(code)
        if skipped is None:
            return
        if skipped:
            message += " (and %d more %s since the last such line)"
            args = (*args, skipped, code)
        log.log(level, message, *args, extra={"code": code, **(extra or {})})


log_throttled = _ThrottledLog()
"""Log a failure, at most once per 10 s per code (with a count of the rest)."""

_unexpected = _ThrottledLog()
_tracebacks = _ThrottledLog(interval=3600.0)
"""An unexpected error's traceback is logged the first time its cause is seen, then at most
once an hour; the lines in between, at most one per 10 s, name the cause."""
_LOGGED = "_mlserve_logged"


def unexpected_cause(exc: BaseException) -> str:
    """What makes unexpected errors "the same": the exception's type and the place it was
    raised (the last frame of its traceback), never its message (which may hold input)."""
    kind = f"{type(exc).__module__}.{type(exc).__qualname__}".removeprefix("builtins.")
    tb = exc.__traceback__
    if tb is None:
        return kind
    while tb.tb_next is not None:
        tb = tb.tb_next
    return f"{kind} at {tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"


def _mark_logged(exc: BaseException) -> None:
    with contextlib.suppress(AttributeError):  # no __dict__: the uvicorn filter throttles it
        setattr(exc, _LOGGED, True)


def _was_logged(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return all(_was_logged(e) for e in exc.exceptions)
    return getattr(exc, _LOGGED, False) is True


def _summary(exc: BaseException, cause: str) -> str:
    text = str(exc)
    return f"{cause}: {text[:200]!r}" if text else cause


def _unexpected_line(exc: BaseException, context: str) -> tuple[str, tuple, bool] | None:
    """The line for an unexpected error (message, args, with its traceback?), or None when
    its cause was logged less than 10 s ago (then it is counted)."""
    cause = unexpected_cause(exc)
    skipped = _unexpected.admit(cause)
    if skipped is None:
        return None
    message, args = "unhandled error (%s): %s", (context, _summary(exc, cause))
    if skipped:
        message += " (and %d more of it since the last such line)"
        args = (*args, skipped)
    return message, args, _tracebacks.admit(cause) is not None


def log_unexpected(exc: BaseException, context: str) -> None:
    """Log an error no code expected (answered 500): its first occurrence in full, with its
    traceback; then at most one line per 10 s per cause (`unexpected_cause`), with a count
    of the ones not logged, and the traceback again at most once an hour. `context` says
    where it happened ("request <id>")."""
    _mark_logged(exc)
    line = _unexpected_line(exc, context)
    if line is not None:
        message, args, with_traceback = line
        log.error(message, *args, exc_info=exc if with_traceback else None)


class _UnexpectedOnce(logging.Filter):
    """On uvicorn's logger: Starlette re-raises an unexpected error after its 500 was sent,
    and uvicorn logs it again in full. Drop those `log_unexpected` logged (or counted)
    already, and throttle any other as `log_unexpected` would."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:
            return True
        if _was_logged(exc):
            return False
        line = _unexpected_line(exc, record.getMessage().strip())
        if line is None:
            return False
        message, args, with_traceback = line
        record.msg, record.args = message, args
        if not with_traceback:
            record.exc_info, record.exc_text = None, None
        return True


def _filter_uvicorn_duplicates() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _UnexpectedOnce) for f in logger.filters):
        logger.addFilter(_UnexpectedOnce())


def log_error(method: str, path: str, exc: MLServeError) -> None:
    """A line for an error answer: 5xx at WARNING, throttled per code; the rest at INFO."""
    log_error_answer(method, path, exc.status_code, exc.code, exc.message)


def log_error_answer(method: str, path: str, status: int, code: str, message: str) -> None:
    """`log_error` for an error answer that is not an `MLServeError` (routing, validation)."""
    args = (method, path, status, code, message)
    extra = {"status": status, "method": method, "path": path}
    if status >= 500:
        log_throttled(logging.WARNING, code, "%s %s -> %d %s: %s", *args, extra=extra)
    else:
        log.info("%s %s -> %d %s: %s", *args, extra={"code": code, **extra})


def error_response(request: Request, exc: MLServeError) -> JSONResponse:
    """The answer to a known error. Access logs are off by default (they cost as much as a
    cache hit), so errors still leave a line, with the request id the log format adds;
    server-side failures (5xx) at WARNING, throttled per code."""
    log_error(request.method, request.url.path, exc)
    return JSONResponse(
        error_body(request, exc.code, exc.message), exc.status_code, headers=exc.headers
    )


def install_error_handlers(app: FastAPI) -> None:
    """Turn every exception into `{"error", "code", "request_id"}`; never a traceback in
    an answer, and in the log at most one line per 10 s per cause (`log_unexpected`)."""

    @app.exception_handler(MLServeError)
    async def _known(request: Request, exc: MLServeError) -> JSONResponse:
        return error_response(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        path = request.url.path
        log_error_answer(request.method, path, exc.status_code, code, str(exc.detail))
        return JSONResponse(
            error_body(request, code, str(exc.detail)), exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()
        )
        log_error_answer(request.method, request.url.path, 422, "invalid_request", problems)
        return JSONResponse(error_body(request, "invalid_request", problems), 422)

    @app.exception_handler(Exception)
    async def _unknown(request: Request, exc: Exception) -> JSONResponse:
        log_unexpected(exc, f"request {getattr(request.state, 'request_id', '-')}")
        return JSONResponse(error_body(request, "internal_error", "Internal server error"), 500)

    _filter_uvicorn_duplicates()
