"""A real OTLP trace receiver for the tests: opentelemetry-proto's own `TraceService`, served
over gRPC on a free port, keeping every span the services export."""

from __future__ import annotations

import threading
import time
from concurrent import futures
from dataclasses import dataclass

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from harness.redis_server import free_port


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    kind: int
    attributes: dict[str, object]
    start_ns: int
    end_ns: int


def _value(value) -> object:  # noqa: ANN001 - an AnyValue
    which = value.WhichOneof("value")
    return getattr(value, which) if which else None


class _Collector(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, keep: bool) -> None:
        self.keep = keep
        self.spans: list[Span] = []
        self.count = 0
        self.lock = threading.Lock()

    def Export(self, request, context):  # noqa: ANN001, ANN201, N802
        if not self.keep:  # a benchmark's sink: count, and spend nothing more
            count = sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
            with self.lock:
                self.count += count
            return trace_service_pb2.ExportTraceServiceResponse()
        received = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        Span(
                            service=str(resource.get("service.name")),
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            kind=span.kind,
                            attributes={a.key: _value(a.value) for a in span.attributes},
                            start_ns=span.start_time_unix_nano,
                            end_ns=span.end_time_unix_nano,
                        )
                    )
        with self.lock:
            self.spans.extend(received)
            self.count += len(received)
        return trace_service_pb2.ExportTraceServiceResponse()


class OtlpReceiver:
    """`with OtlpReceiver() as receiver:` a collector at `receiver.endpoint`; with
    `keep=False` it only counts the spans (`received`), as a benchmark's sink."""

    def __init__(self, port: int | None = None, keep: bool = True) -> None:
        self.port = port or free_port()
        self._collector = _Collector(keep)
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self._collector, self._server)
        self._server.add_insecure_port(f"127.0.0.1:{self.port}")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """A service's environment for exporting its spans here, without delay."""
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.endpoint,
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
            "OTEL_BSP_SCHEDULE_DELAY": "50",
        }

    def __enter__(self) -> OtlpReceiver:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(None)

    @property
    def received(self) -> int:
        """Spans received so far."""
        return self._collector.count

    def spans(self, trace_id: str | None = None) -> list[Span]:
        with self._collector.lock:
            return [s for s in self._collector.spans if trace_id in (None, s.trace_id)]

    def trace(self, trace_id: str, services: set[str], timeout: float = 20) -> list[Span]:
        """The spans of one trace once every service in `services` has sent some and no more
        came for half a second."""
        deadline, last = time.monotonic() + timeout, -1
        while time.monotonic() < deadline:
            spans = self.spans(trace_id)
            if services <= {s.service for s in spans} and len(spans) == last:
                return spans
            last = len(spans)
            time.sleep(0.5)
        return self.spans(trace_id)
