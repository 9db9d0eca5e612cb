"""Request ids and logging: every log line and every response carries the request's id."""

from __future__ import annotations

import contextvars
import itertools
import logging
import os
import re
import secrets

from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
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


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def setup_logging(level: str, access_log: bool = False) -> None:
    """One format for the whole process, the request id in every line; a line per request
    only when `access_log` (uvicorn writes them while its access logger has a handler)."""
    handler = logging.StreamHandler()
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = access_log or name != "uvicorn.access"


class RequestIdMiddleware:
    """Takes a safe X-Request-ID from the client or makes one; echoes it in the response,
    with the name of the worker that answered (`WORKER_HEADER`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = given if is_safe_request_id(given) else new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                headers.append((WORKER_HEADER, WORKER_ID))
                headers.append((WORKERS_HEADER, WORKER_COUNT))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)
