"""The other client of the stall workload, run as its own process (so that nothing the driver
does with the large request can delay it): ``python stall_probe.py TARGET SECONDS``.

It makes small ExecuteTool calls (``echo`` of 10 B) one after the other for SECONDS and prints
one JSON array of ``[start, latency_ms]`` pairs, ``start`` being wall-clock seconds, so that
the driver can tell which calls overlapped its large requests.
"""

from __future__ import annotations

import json
import sys
import time

import grpc

from toolbridge.core.values import encode_value
from toolbridge.transport import channel_options
from toolbridge.v1 import toolbridge_pb2 as pb
from toolbridge.v1.toolbridge_pb2_grpc import ToolBridgeStub


def main(target: str, seconds: float) -> None:
    with grpc.insecure_channel(target, options=channel_options()) as channel:
        stub = ToolBridgeStub(channel)
        session = stub.InitializeSession(pb.InitializeSessionRequest()).session_id
        request = pb.ToolCallRequest(
            session_id=session,
            tool_id="echo",
            kwargs={"payload": encode_value("x" * 10)},
        )
        for _ in range(20):  # warm the connection and the host's code path
            stub.ExecuteTool(request)
        samples: list[tuple[float, float]] = []
        print("ready", file=sys.stderr, flush=True)
        stop = time.time() + seconds
        while time.time() < stop:
            started = time.time()
            t0 = time.perf_counter()
            response = stub.ExecuteTool(request)
            samples.append((started, (time.perf_counter() - t0) * 1000))
            if not response.success:
                raise SystemExit(f"the probe's call failed: {response.error.message}")
        stub.CleanupSession(pb.CleanupSessionRequest(session_id=session))
    print(json.dumps(samples))


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
