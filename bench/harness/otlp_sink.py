"""An OTLP/HTTP trace endpoint (``POST /v1/traces``, protobuf: the SDKs' default protocol) that
counts and drops what it is sent, for the tracing benchmark.

Runs as its own process (``python bench/harness/otlp_sink.py``), so that its work does not share
the benchmark client's interpreter; prints ``listening <port>`` once it serves, and the spans it
received when it is stopped (SIGTERM).
"""

from __future__ import annotations

import asyncio
import signal

from aiohttp import web
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

EMPTY = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()


async def main() -> None:
    received = 0

    async def export(request: web.Request) -> web.Response:
        nonlocal received
        message = trace_service_pb2.ExportTraceServiceRequest.FromString(await request.read())
        received += sum(
            len(scope.spans) for resource in message.resource_spans for scope in resource.scope_spans
        )
        return web.Response(body=EMPTY, content_type="application/x-protobuf")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/traces", export)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    stopped = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
    print(f"listening {port}", flush=True)
    await stopped.wait()
    await runner.cleanup()
    print(f"received {received}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
