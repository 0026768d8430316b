"""An OTLP/gRPC trace endpoint that counts and drops what it is sent, for the tracing benchmark.

Runs as its own process (``python bench/harness/otlp_sink.py``), so that its work does not share
the benchmark client's interpreter; prints ``listening <port>`` once it serves, and the spans it
received when it is stopped (SIGTERM).
"""

from __future__ import annotations

import signal
import threading
from concurrent import futures
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import (
    trace_service_pb2,
    trace_service_pb2_grpc,
)


class Sink(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.spans = 0
        self._lock = threading.Lock()

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        received = sum(
            len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans
        )
        with self._lock:
            self.spans += received
        return trace_service_pb2.ExportTraceServiceResponse()


def main() -> None:
    sink = Sink()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(sink, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    print(f"listening {port}", flush=True)
    stopped.wait()
    server.stop(grace=1).wait()
    print(f"received {sink.spans}", flush=True)


if __name__ == "__main__":
    main()
