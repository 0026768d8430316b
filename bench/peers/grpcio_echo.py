"""The bare peer of the worker benchmark: a grpcio (asyncio) server answering ToolBridgeWorker's
CallTool with its `payload` argument, over a Unix socket, with nothing else in between.

    python bench/peers/grpcio_echo.py --socket /tmp/x.sock   prints "ready" once it listens
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import grpc

from toolbridge.v1 import toolbridge_pb2 as pb
from toolbridge.v1 import worker_pb2_grpc


class Echo(worker_pb2_grpc.ToolBridgeWorkerServicer):
    async def CallTool(self, request: pb.ToolCallRequest, context: Any) -> pb.ToolCallResponse:
        return pb.ToolCallResponse(
            success=True,
            result=request.kwargs["payload"],
            request_id=request.request_id,
        )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--socket", required=True)
    args = parser.parse_args()
    server = grpc.aio.server()
    # Only CallTool is served: the other RPCs answer UNIMPLEMENTED, as grpcio does by default.
    worker_pb2_grpc.add_ToolBridgeWorkerServicer_to_server(Echo(), server)  # type: ignore[abstract]
    server.add_insecure_port(f"unix:{args.socket}")
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(main())
