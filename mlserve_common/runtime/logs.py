"""How the services log. Every record carries the request's id; the format is readable text
(the default, on stderr) or, with `MLSERVE_LOG_FORMAT=json`, one JSON object per line on
stdout for log pipelines: time, level, service, pid, logger, message, request id, and where
known the model, digest, method, path, status, duration and error code. uvicorn's own records
(start, stop, errors) go the same way. The access line, one per request when
`MLSERVE_ACCESS_LOG` is on, is written by `RequestIdMiddleware` with status and duration."""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum

import orjson
from pydantic_settings import BaseSettings, SettingsConfigDict

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
request_fields: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "request_fields", default=None
)
"""What a request is about, for its log lines (`model`, `digest`): set where it is known.
Each request runs in a task of its own, with its own copy of the context: nothing leaks
from one request to the next."""

FIELDS = ("trace_id", "model", "digest", "method", "path", "status", "duration_ms", "code")
"""A record's own fields (logging's `extra=`) that go into a JSON line when present."""
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
TRACED_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s %(trace_id)s] %(message)s"
"""The text format while traces are exported: each line names its trace too."""

_trace_ids: Callable[[], str | None] | None = None
"""The current trace's id, once `mlserve_common.runtime.tracing` exports traces."""


def use_trace_ids(current: Callable[[], str | None] | None) -> None:
    """Every log line from now on carries the trace id `current()` gives (tracing's hook;
    None: no more)."""
    global _trace_ids
    _trace_ids = current


class LogFormat(StrEnum):
    text = "text"
    json = "json"


class LogSettings(BaseSettings):
    """`MLSERVE_LOG_LEVEL`, `MLSERVE_LOG_FORMAT`, `MLSERVE_ACCESS_LOG`: each service's
    Settings inherits these fields."""

    model_config = SettingsConfigDict(env_prefix="MLSERVE_", env_ignore_empty=True)

    log_level: str = "info"
    """Python logging level."""
    log_format: LogFormat = LogFormat.text
    """`text`: readable lines on stderr; `json`: one JSON object per line on stdout."""
    access_log: bool = False
    """Log every request, with its status and duration (off: a log line costs about as
    much as answering a cache hit)."""


def note_request(**fields: str) -> None:
    """Add `fields` (model, digest) to the log lines of the request under way."""
    current = request_fields.get()
    request_fields.set({**current, **fields} if current else fields)


class _RequestIdFilter(logging.Filter):
    """The request under way's id, unless the record names its own (a refusal made before
    any request reached the app)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "request_id" not in record.__dict__:
            record.request_id = request_id_var.get()
        if _trace_ids is not None and "trace_id" not in record.__dict__:
            record.trace_id = _trace_ids() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, encoded by orjson; a traceback as one string field."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "pid": record.process,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", "-")
        if request_id != "-":
            entry["request_id"] = request_id
        entry.update(request_fields.get() or {})
        for name in FIELDS:
            value = record.__dict__.get(name)
            if value is not None and value != "-":
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def setup_logging(settings: LogSettings, service: str) -> None:
    """One format for the whole process, the request id in every line. uvicorn's access
    logger is silenced: the access line is `RequestIdMiddleware`'s."""
    if settings.log_format is LogFormat.json:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter(service))
        logging.captureWarnings(True)  # a library's warning is a JSON line too
    else:
        handler = logging.StreamHandler()
        handler.setFormatter(
            logging.Formatter(TRACED_TEXT_FORMAT if _trace_ids is not None else TEXT_FORMAT)
        )
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = name != "uvicorn.access"
