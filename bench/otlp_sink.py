"""An OTLP trace sink for benchmarks: the test harness's receiver (opentelemetry-proto's own
TraceService over gRPC, `harness.otlp`) in a process of its own, counting spans and keeping
none, so that a stack with tracing on exports to a real collector while it is measured.

    python -m bench.otlp_sink PORT     # until SIGTERM; prints the spans received
"""

from __future__ import annotations

import signal
import sys
import threading

from harness.otlp import OtlpReceiver


def main() -> int:
    stop = threading.Event()
    with OtlpReceiver(int(sys.argv[1]), keep=False) as sink:
        # after gRPC's start: set before it, this handler did not survive it
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        stop.wait()
    print(f"spans received: {sink.received}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
