"""What tracing costs (docs/tracing.md): one host with tracing off (the default) and one with it
on, every call sampled and its spans batched to a local OTLP receiver (bench/harness/otlp_sink.py,
a process of its own, over http/protobuf: the SDKs' default protocol), driven by the same client
loops in the same run: small calls one at a time and 64 in flight. Besides calls per second, the
host's own CPU time per call (from /proc).

With ``--baseline CHECKOUT`` (a built checkout of another branch, e.g. main) a third host, that
checkout's, runs beside them: tracing off against the code before tracing existed.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from toolbridge import ToolBridgeClient
from toolbridge.launch.host import HostProcess

from .peers import (
    MAX_MESSAGE_BYTES,
    REPO,
    BenchError,
    GrpcCaller,
    cpu_seconds,
    toolbridge_host,
)
from .workloads import (
    Call,
    Counts,
    Record,
    echo_call,
    timed_concurrent,
    timed_sequential,
)


@contextlib.asynccontextmanager
async def otlp_sink() -> AsyncIterator[tuple[str, list[int]]]:
    """The sink process; yields its endpoint and a list that holds the spans it received once it stopped."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(REPO / "bench" / "harness" / "otlp_sink.py"),
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode().split()
    if line[:1] != ["listening"]:
        raise BenchError(f"the OTLP sink did not start: {line}")
    received: list[int] = []
    try:
        yield f"http://127.0.0.1:{line[1]}", received
    finally:
        process.terminate()
        out, _ = await process.communicate()
        received.extend(int(word) for word in out.decode().split()[1:2])


async def tracing(counts: Counts, repeats: int, record: Record, baseline: Path | None) -> None:
    async with contextlib.AsyncExitStack() as stack:
        endpoint, received = await stack.enter_async_context(otlp_sink())
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_TRACES_SAMPLER": "always_on",
            "OTEL_SERVICE_NAME": "toolbridge-bench",
        }
        hosts = {
            "tracing-off": await stack.enter_async_context(toolbridge_host()),
            "tracing-on": await stack.enter_async_context(toolbridge_host({"tracing": "true"}, env=env)),
        }
        if baseline is not None:
            hosts["baseline"] = await stack.enter_async_context(toolbridge_host(checkout=baseline))
        calls = await _measure(stack, hosts, counts, repeats, record)
    # Each call on the host is two spans (its Calls span and its execute_tool span).
    spans = received[0] if received else 0
    print(
        f"      tracing     the receiver got {spans:,} spans for {calls:,} traced calls",
        file=sys.stderr,
    )
    if spans < 2 * calls:
        raise BenchError(f"{2 * calls - spans:,} spans of the traced host never reached the receiver")


async def _measure(
    stack: contextlib.AsyncExitStack,
    hosts: dict[str, HostProcess],
    counts: Counts,
    repeats: int,
    record: Record,
) -> int:
    """Every case on every host, back to back, in an order that turns; returns the traced host's calls."""
    callers: dict[str, GrpcCaller] = {}
    for peer, host in hosts.items():
        client = ToolBridgeClient(host.target, max_message_bytes=MAX_MESSAGE_BYTES)
        stack.push_async_callback(client.close)
        await client.initialize_session()
        callers[peer] = GrpcCaller(peer, client)
    echo = echo_call(10)
    traced = 0
    for (
        peer,
        caller,
    ) in callers.items():  # untimed warm-up (the traced host's spans count)
        for _ in range(counts.warmup):
            echo.check(peer, await caller.call(echo.tool, echo.kwargs))
        traced += counts.warmup if peer == "tracing-on" else 0
    peers = list(hosts)
    for repeat in range(repeats):
        order = peers[repeat % len(peers) :] + peers[: repeat % len(peers)]
        for peer in order:
            figures = await _timed(hosts[peer], callers[peer], echo, counts.sequential, 1)
            record("echo 10 B sequential", peer, figures)
        for peer in order:
            figures = await _timed(hosts[peer], callers[peer], echo, counts.concurrent, counts.in_flight)
            record(f"echo 10 B x{counts.in_flight}", peer, figures)
        traced += counts.sequential + counts.concurrent
    return traced


async def _timed(
    host: HostProcess, caller: GrpcCaller, call: Call, n: int, in_flight: int
) -> dict[str, float]:
    """``n`` calls ``in_flight`` at a time: calls per second, and the host's CPU microseconds per call."""
    before = cpu_seconds(host.process.pid)
    figures = (
        await timed_sequential(caller, call, n)
        if in_flight == 1
        else await timed_concurrent(caller, call, n, in_flight)
    )
    figures["host_cpu_us"] = (cpu_seconds(host.process.pid) - before) / n * 1e6
    return figures
