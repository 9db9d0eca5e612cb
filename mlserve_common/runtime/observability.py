"""Request ids: every log line and every response carries the request's id."""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlserve_common.runtime import tracing
from mlserve_common.runtime.logs import request_id_var

REQUEST_ID_HEADER = "x-request-id"
WORKER_HEADER = b"x-mlserve-worker"
WORKER_ID = secrets.token_hex(4).encode()
"""This process's random name, on every answer: the gateway spreads its calls over
model_api's workers by it (each worker process imports this module anew)."""
WORKERS_HEADER = b"x-mlserve-workers"
WORKER_COUNT_ENV = "MLSERVE_WORKER_COUNT"  # set by server.serve for the workers it spawns
WORKER_COUNT = os.environ.get(WORKER_COUNT_ENV, "1").encode()
"""How many workers answer on this port, on every answer: the gateway opens connections
until it has reached each of them."""
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# A random prefix per process and a counter: unique across processes and restarts, and
# without uuid4's call into the OS's random source on every request.
_ID_PREFIX = secrets.token_hex(8)
_ID_COUNTER = itertools.count()


NO_TELEMETRY = {"tracing": False, "metrics": False, "logs": False}
"""FastAPI's built-in OpenTelemetry hooks, off: with no provider configured they only cost
(several provider and environment lookups on every request); the services' own metrics are
Prometheus's, their traces the request ids."""


def is_safe_request_id(value: object) -> bool:
    """A request id from outside that may be echoed and logged as it is."""
    return isinstance(value, str) and _SAFE_ID.fullmatch(value) is not None


def new_request_id() -> str:
    """32 hex characters, like a UUID's."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


access_logger = logging.getLogger("mlserve.access")


class RequestIdMiddleware:
    """Takes a safe X-Request-ID from the client or makes one; echoes it in the response,
    with the name of the worker that answered (`WORKER_HEADER`). With `access_log`, one line
    per request: method, path, status and duration."""

    def __init__(self, app: ASGIApp, access_log: bool = False) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = given if is_safe_request_id(given) else new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        status = 0
        start = time.perf_counter() if self.access_log else 0.0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                headers.append((WORKER_HEADER, WORKER_ID))
                headers.append((WORKERS_HEADER, WORKER_COUNT))
                message = {**message, "headers": headers}
            await send(message)

        trace_id = None  # the access line is written after the span has ended
        try:
            if tracing.enabled:
                with self._span(scope) as span:
                    trace_id = tracing.trace_id()
                    await self.app(scope, receive, send_with_id)
                    span.set_attribute("http.response.status_code", status)
                    tracing.set_attributes(**tracing.request_attributes())
            else:
                await self.app(scope, receive, send_with_id)
        finally:
            if self.access_log:
                self._log(scope, status, start, trace_id)
            request_id_var.reset(token)

    @staticmethod
    def _span(scope: Scope):  # noqa: ANN205 - a context manager
        """The request's server span, in the trace its `traceparent` header names."""
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in (b"traceparent", b"tracestate")
        }
        method, path = scope["method"], scope["path"]
        return tracing.server_span(
            f"{method} {path}", carrier, **{"http.request.method": method, "url.path": path}
        )

    @staticmethod
    def _log(scope: Scope, status: int, start: float, trace_id: str | None) -> None:
        duration_ms = round((time.perf_counter() - start) * 1000, 3)
        method, path = scope["method"], scope["path"]
        extra = {"method": method, "path": path, "status": status, "duration_ms": duration_ms}
        if trace_id is not None:
            extra["trace_id"] = trace_id
        access_logger.info("%s %s %d %.1f ms", method, path, status, duration_ms, extra=extra)
