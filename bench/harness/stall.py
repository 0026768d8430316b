"""The stall other clients see while the host processes the largest request it allows.

One host with its default limits; a probe process (``stall_probe.py``) makes small calls one
after the other while this process sends large requests: a map with as many entries as
``maxValueNodes`` allows, to a tool that counts them (``count_entries``) and to one that sends
them back (``echo_value``); and a 600,000-entry map (under the 10 MiB message limit), which the
host refuses before decoding it. The figures are the latencies of the probe's calls that
overlapped a large request (p50, p99, max), against the same probe's p99 with the host idle,
and how long the large request itself took.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from toolbridge import ToolBridgeClient
from toolbridge.core.values import encode_value
from toolbridge.transport import channel_options
from toolbridge.v1 import toolbridge_pb2 as pb
from toolbridge.v1.toolbridge_pb2_grpc import ToolBridgeStub

from .peers import BenchError, toolbridge_host
from .stats import percentile
from .workloads import Counts, Record

if TYPE_CHECKING:
    from toolbridge.v1.toolbridge_pb2_grpc import ToolBridgeAsyncStub

PROBE = Path(__file__).resolve().parent / "stall_probe.py"
#: The host's default maxValueNodes (docs/configuration.md); the map itself is one node.
DEFAULT_MAX_VALUE_NODES = 10_000


def big_map(entries: int) -> pb.ToolCallRequest:
    value = encode_value({f"k{i}": i for i in range(entries)})
    return pb.ToolCallRequest(kwargs={"data": value})


async def probe(target: str, seconds: float) -> tuple[asyncio.subprocess.Process, asyncio.Task[bytes]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(PROBE),
        target,
        str(seconds),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    assert process.stdout is not None
    ready = await process.stderr.readline()
    if ready.strip() != b"ready":
        raise BenchError(f"the stall probe did not start: {ready!r} {await process.stderr.read()!r}")
    return process, asyncio.create_task(process.stdout.read())


async def samples_of(process: asyncio.subprocess.Process, output: asyncio.Task[bytes]) -> list[list[float]]:
    text = await output
    if await process.wait() != 0:
        raise BenchError(f"the stall probe failed: {text[-2000:]!r}")
    return list(json.loads(text))


async def stall(counts: Counts, repeats: int, record: Record) -> None:
    entries, refused = counts.stall_entries, counts.stall_refused
    cases = [
        (
            f"count_entries, map of {entries:,} entries",
            "count_entries",
            big_map(entries),
            True,
        ),
        (
            f"echo_value, map of {entries:,} entries",
            "echo_value",
            big_map(entries),
            True,
        ),
        (
            f"map of {refused:,} entries (refused)",
            "count_entries",
            big_map(refused),
            False,
        ),
    ]
    # A full run keeps the host's default maxValueNodes; a smoke run shrinks it with the map.
    bound = entries + 1
    flags: dict[str, str | int] = {} if bound == DEFAULT_MAX_VALUE_NODES else {"max-value-nodes": bound}
    async with toolbridge_host(flags) as host, ToolBridgeClient(host.target) as client:
        session = (await client.initialize_session()).session_id
        channel = grpc.aio.insecure_channel(host.target, options=channel_options(16 * 1024 * 1024))
        stub = ToolBridgeStub(channel)
        try:
            for _ in range(repeats):
                for case, tool, request, allowed in cases:
                    request.session_id, request.tool_id = session, tool
                    figures = await _measure(host.target, stub, request, allowed, counts)
                    record(
                        case,
                        "toolbridge",
                        {k: v for k, v in figures.items() if k != "idle_p99_ms"},
                    )
                    record(case, "idle", {"p99_ms": figures["idle_p99_ms"]})
        finally:
            await channel.close(None)


async def _measure(
    target: str,
    stub: ToolBridgeAsyncStub,
    request: pb.ToolCallRequest,
    allowed: bool,
    counts: Counts,
) -> dict[str, float]:
    process, output = await probe(target, counts.stall_seconds)
    await asyncio.sleep(counts.stall_seconds * 0.2)  # the probe's calls with the host idle
    windows: list[tuple[float, float]] = []
    durations: list[float] = []
    deadline = time.time() + counts.stall_seconds * 0.6
    while time.time() < deadline:
        started, t0 = time.time(), time.perf_counter()
        try:
            response = await stub.ExecuteTool(request)
        except grpc.aio.AioRpcError as error:
            if allowed or error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise BenchError(f"the large request failed: {error.code()} {error.details()}") from None
        else:
            if not allowed or not response.success:
                raise BenchError(f"the large request was answered unexpectedly: {response.error.message!r}")
        durations.append((time.perf_counter() - t0) * 1000)
        windows.append((started, time.time()))
        await asyncio.sleep(0.05)
    samples = await samples_of(process, output)
    during = [ms for start, ms in samples if any(a <= start + ms / 1000 and start <= b for a, b in windows)]
    idle = [ms for start, ms in samples if start + ms / 1000 < windows[0][0]]
    if not during or not idle:
        raise BenchError(
            f"the probe made {len(during)} calls during the large requests and {len(idle)} before"
        )
    return {
        "p50_ms": percentile(during, 50),
        "p99_ms": percentile(during, 99),
        "max_ms": max(during),
        "request_ms": percentile(durations, 50),
        "idle_p99_ms": percentile(idle, 99),
    }
