"""OpenTelemetry traces of requests through the stack, exported with OTLP (gRPC).

Off unless the standard `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set, and
then each worker process sends its spans to that collector through `opentelemetry-sdk`'s
batch processor; every other `OTEL_*` variable (sampler, service name, resource attributes,
headers, batch sizes) means what the SDK says. Off, nothing here touches a request but a
module flag: `span` hands out one shared no-op context manager, `traceparent` is None.

A trace crosses the services as a W3C `traceparent`: the gateway continues the client's (HTTP
header or gRPC metadata) or starts one, and passes it to model_api with each call, or with
each item of a call several requests share. Every span carries the request's id, model and
digest where known (`mlserve.request_id`, `mlserve.model`, `mlserve.digest`), and with
tracing on every log line carries the trace id.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import time
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from mlserve_common.runtime.logs import request_fields, request_id_var, use_trace_ids

__all__ = ["SpanKind"]

ENDPOINT_ENV = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
TRACEPARENT = "traceparent"

enabled = False
"""Whether this process exports traces (set once by `configure`)."""
_tracer: trace.Tracer = trace.NoOpTracer()
_provider: Any = None
_propagator = TraceContextTextMapPropagator()
_NOTHING = contextlib.nullcontext()
_EPOCH_OFFSET_NS = time.time_ns() - time.perf_counter_ns()
"""Wall clock minus `perf_counter`, for spans of work timed with `perf_counter`."""


def wanted(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment asks for traces: an OTLP endpoint, and nothing saying off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return any(environ.get(name, "").strip() for name in ENDPOINT_ENV)


def configure(service: str) -> None:
    """Export this process's spans when the environment asks for it (`wanted`). Called by
    each worker process once it runs (the exporter's thread must be the worker's own)."""
    global enabled, _tracer, _provider
    if enabled or not wanted():
        return
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"
    )
    if protocol.strip().lower() != "grpc":
        logging.getLogger("mlserve").warning(
            "OTEL_EXPORTER_OTLP_PROTOCOL is %r: MLServe exports OTLP over gRPC only; point the "
            "endpoint at the collector's gRPC port (4317)",
            protocol,
        )
    # OTEL_SERVICE_NAME, when set, names the service; else the service's own name.
    named = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service}
    _provider = TracerProvider(resource=Resource.create(named))
    _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    _tracer = _provider.get_tracer("mlserve")
    enabled = True
    use_trace_ids(trace_id)


def shutdown() -> None:
    """Send the spans still queued (a worker that stops)."""
    if _provider is not None:
        _provider.shutdown()


def request_attributes() -> dict[str, Any]:
    """The request's id, model and digest (as far as known) as span attributes."""
    attributes = {"mlserve.request_id": request_id_var.get()}
    for name, value in (request_fields.get() or {}).items():
        attributes[f"mlserve.{name}"] = value
    return attributes


def _attributes(extra: Mapping[str, Any]) -> dict[str, Any]:
    return {**request_attributes(), **extra}


def _sampled() -> bool:
    """Whether the current span is recorded: a trace the sampler left out gets no children
    (the samplers MLServe is run with decide by the parent, or by the trace id alone)."""
    return enabled and trace.get_current_span().is_recording()


def span(name: str, kind: SpanKind = SpanKind.INTERNAL, **attributes: Any):  # noqa: ANN201
    """A child of the current span for the block's duration (a shared no-op when off, or
    when the current trace is not sampled)."""
    if not _sampled():
        return _NOTHING
    return _tracer.start_as_current_span(name, kind=kind, attributes=_attributes(attributes))


@contextlib.contextmanager
def server_span(name: str, carrier: Mapping[str, str], **attributes: Any) -> Iterator[Any]:
    """The span of a request this service received, continuing the trace `carrier`'s
    `traceparent` names (HTTP headers or gRPC metadata), or starting one."""
    parent = _propagator.extract(carrier) if TRACEPARENT in carrier else None
    with _tracer.start_as_current_span(
        name, context=parent, kind=SpanKind.SERVER, attributes=_attributes(attributes)
    ) as current:
        yield current


def item_span(name: str, traceparent: str | None):  # noqa: ANN201
    """The span of one request of a call several requests shared, in its own trace (the
    `traceparent` the call gave it), or in the call's when it has none."""
    if not enabled:
        return _NOTHING
    return server_span(name, {TRACEPARENT: traceparent} if traceparent else {})


def traceparent() -> str | None:
    """The current span as a W3C `traceparent`, to pass on with a call (None when off)."""
    if not enabled:
        return None
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get(TRACEPARENT)


def capture() -> contextvars.Context | None:
    """This request's context (its span, id, model), for work done in another thread or
    task; None when off or when the trace is not sampled."""
    return contextvars.copy_context() if _sampled() else None


def record(name: str, started: float, ended: float, **attributes: Any) -> None:
    """A span of work that ran from `started` to `ended` (`perf_counter` seconds), in the
    current context: work timed elsewhere, such as a batch several requests shared."""
    if not _sampled():
        return
    opened = _tracer.start_span(
        name,
        attributes=_attributes(attributes),
        start_time=_EPOCH_OFFSET_NS + int(started * 1e9),
    )
    opened.end(end_time=_EPOCH_OFFSET_NS + int(ended * 1e9))


def set_attributes(**attributes: Any) -> None:
    """Add attributes to the current span (a result known only at its end)."""
    if _sampled():
        trace.get_current_span().set_attributes(attributes)


def trace_id() -> str | None:
    """The current trace's id, 32 hex digits, for log lines (None when off or outside one)."""
    if not enabled:
        return None
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
