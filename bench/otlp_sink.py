"""An OTLP trace sink for benchmarks: the test harness's receiver (opentelemetry-proto's own
TraceService over gRPC) in a process of its own, counting spans and keeping none, so that a
stack with tracing on exports to a real collector while it is measured.

    python -m bench.otlp_sink PORT     # until SIGTERM; prints the spans received
"""

from __future__ import annotations

import signal
import sys
import threading
from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


class _Counter(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.spans = 0
        self.lock = threading.Lock()

    def Export(self, request, context):  # noqa: ANN001, ANN201, N802
        count = sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
        with self.lock:
            self.spans += count
        return trace_service_pb2.ExportTraceServiceResponse()


def main() -> int:
    counter = _Counter()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(counter, server)
    server.add_insecure_port(f"127.0.0.1:{int(sys.argv[1])}")
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    server.stop(None)
    print(f"spans received: {counter.spans}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
