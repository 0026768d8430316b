"""The workloads. Each one runs every peer it applies to, in an order that rotates with the
repeat, records one sample per peer into ``Results`` and checks the answers it got back.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mcp import Client

from toolbridge import ToolBridgeClient
from toolbridge.dspy import GRPCToolBridge

from .peers import (
    BenchError,
    Caller,
    GrpcCaller,
    SyncCaller,
)
from .stats import percentile

KIB = 1024
MIB = 1024 * KIB
COMPUTE_N = 1000
CHUNK_BYTES = 64 * KIB


@dataclass(frozen=True)
class Counts:
    """How much work each measurement does; ``SMOKE`` keeps the harness's own test fast."""

    sequential: int = 3000
    sequential_large: int = 150
    mcp_share: float = 0.25  # MCP peers are slower: fewer calls keep the run short, rates stay comparable
    concurrent: int = 10000
    in_flight: int = 64
    stream_chunks: int = 2048
    batches: int = 40
    batch_size: int = 1000
    sessions: int = 1000
    mcp_sessions: int = 60
    dspy_calls: int = 2000
    # Small calls timed while another task keeps 1 MiB echoes in flight on the same client.
    beside_large: int = 2000
    memory_sessions: tuple[int, ...] = (10_000, 100_000)
    warmup: int = 300
    # The stall workload: how long the probe runs per case, the largest allowed map (the
    # default maxValueNodes less the map itself) and one the host refuses (under 10 MiB).
    stall_seconds: float = 4.0
    stall_entries: int = 9_999
    stall_refused: int = 600_000


SMOKE = Counts(
    sequential=20,
    sequential_large=2,
    mcp_share=0.5,
    concurrent=128,
    stream_chunks=16,
    batches=4,
    sessions=10,
    mcp_sessions=4,
    dspy_calls=20,
    beside_large=20,
    memory_sessions=(100, 300),
    warmup=10,
    stall_seconds=1.0,
    stall_entries=2_000,
    stall_refused=5_000,
)

Figures = dict[str, dict[str, dict[str, dict[str, list[float]]]]]
#: How a workload run outside ``Bench`` (stores, stall, cluster) hands over one case's figures:
#: ``record(case, peer, figures)``.
Record = Callable[[str, str, dict[str, float]], None]


class Results:
    """Samples by workload, case, peer and metric: one sample per repeat."""

    def __init__(self) -> None:
        self.figures: Figures = {}

    def add(self, workload: str, case: str, peer: str, metric: str, value: float) -> None:
        by_case = self.figures.setdefault(workload, {}).setdefault(case, {})
        by_case.setdefault(peer, {}).setdefault(metric, []).append(value)


def compute_expected(n: int) -> int:
    acc = 0
    for i in range(n):
        acc = (acc + (i * i) % 1_000_000_007) % 1_000_000_007
    return acc


def payload(size: int) -> str:
    return "x" * size


def size_label(size: int) -> str:
    if size >= MIB:
        return f"{size // MIB} MiB"
    if size >= KIB:
        return f"{size // KIB} KiB"
    return f"{size} B"


@dataclass(frozen=True)
class Call:
    """One tool call with the result every peer must give back (as text, MCP's only form)."""

    tool: str
    kwargs: dict[str, Any]
    expected: str

    def check(self, peer: str, result: Any) -> None:
        if str(result) != self.expected:
            shown = str(result)[:80]
            raise BenchError(f"{peer}: {self.tool} answered {shown!r}, not the expected result")


def echo_call(size: int) -> Call:
    text = payload(size)
    return Call("echo", {"payload": text}, text)


COMPUTE = Call("compute", {"n": COMPUTE_N}, str(compute_expected(COMPUTE_N)))


class Bench:
    """What the workloads share: the callers by peer name, counts, results and progress output."""

    def __init__(
        self,
        callers: dict[str, Caller],
        counts: Counts,
        results: Results,
        host_target: str,
        mcp_http_url: str,
        pingpong_target: str,
    ) -> None:
        self.callers = callers
        self.counts = counts
        self.results = results
        self.host_target = host_target
        self.mcp_http_url = mcp_http_url
        #: unix:<path> of the raw socket echo (bench/peers/pingpong.ts): the floor of every figure.
        self.pingpong_target = pingpong_target
        self.repeat = 0

    def rotated(self, names: Sequence[str]) -> list[str]:
        """Peers in an order that moves each repeat, so slow drift does not favour one of them."""
        shift = self.repeat % len(names)
        return [*names[shift:], *names[:shift]]

    def count_for(self, peer: str, count: int) -> int:
        return max(2, int(count * self.counts.mcp_share)) if peer.startswith("mcp") else count

    def record(self, workload: str, case: str, peer: str, figures: dict[str, float]) -> None:
        for metric, value in figures.items():
            self.results.add(workload, case, peer, metric, value)
        shown = "  ".join(f"{metric} {value:,.1f}" for metric, value in figures.items())
        print(
            f"  [{self.repeat + 1}] {workload:<11} {case:<22} {peer:<10} {shown}",
            file=sys.stderr,
            flush=True,
        )

    def grpc(self, peer: str) -> ToolBridgeClient:
        caller = self.callers[peer]
        assert isinstance(caller, GrpcCaller)
        return caller.client


async def timed_sequential(caller: Caller, call: Call, n: int) -> dict[str, float]:
    latencies: list[float] = []
    result: Any = None
    started = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        result = await caller.call(call.tool, call.kwargs)
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    call.check(caller.name, result)
    return {
        "calls_s": n / elapsed,
        "p50_us": percentile(latencies, 50) * 1e6,
        "p99_us": percentile(latencies, 99) * 1e6,
    }


async def timed_concurrent(caller: Caller, call: Call, n: int, in_flight: int) -> dict[str, float]:
    remaining = n
    last: list[Any] = []

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            last.append(await caller.call(call.tool, call.kwargs))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    elapsed = time.perf_counter() - started
    if len(last) != n:
        raise BenchError(f"{caller.name}: {len(last)} of {n} concurrent calls finished")
    call.check(caller.name, last[-1])
    return {"calls_s": n / elapsed}


async def timed_threads(caller: SyncCaller, call: Call, n: int, threads: int) -> dict[str, float]:
    """``timed_concurrent`` for the blocking client: ``threads`` threads share it, as a thread pool would."""
    remaining = n
    lock = threading.Lock()
    last: list[Any] = []

    def worker() -> None:
        nonlocal remaining
        while True:
            with lock:
                if remaining <= 0:
                    return
                remaining -= 1
            last.append(caller.client.call_tool(call.tool, (), call.kwargs))

    def run_all() -> float:
        workers = [threading.Thread(target=worker) for _ in range(threads)]
        started = time.perf_counter()
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()
        return time.perf_counter() - started

    elapsed = await asyncio.to_thread(run_all)
    if len(last) != n:
        raise BenchError(f"{caller.name}: {len(last)} of {n} calls from threads finished")
    call.check(caller.name, last[-1])
    return {"calls_s": n / elapsed}


def timed_pingpong(target: str, n: int, size: int = 32) -> dict[str, float]:
    """Round trips of ``size`` bytes over a blocking Unix socket to the raw echo peer."""
    message = b"x" * size
    latencies: list[float] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(target.removeprefix("unix:"))
        started = time.perf_counter()
        for _ in range(n):
            t0 = time.perf_counter()
            sock.sendall(message)
            received = 0
            while received < size:
                received += len(sock.recv(65536))
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - started
    return {
        "calls_s": n / elapsed,
        "p50_us": percentile(latencies, 50) * 1e6,
        "p99_us": percentile(latencies, 99) * 1e6,
    }


async def warm_up(bench: Bench) -> None:
    """JIT and connection warm-up, untimed; it also checks every peer answers both tools right."""
    for name, caller in bench.callers.items():
        for call in (echo_call(10), COMPUTE):
            for _ in range(bench.count_for(name, bench.counts.warmup)):
                call.check(name, await caller.call(call.tool, call.kwargs))


#: "toolbridge" and "toolbridge-sync" are the clients as a user gets them (the call stream on a
#: Unix socket); "unary" is the asyncio client with every call a unary ExecuteTool instead of
#: a message on the call stream; "grpc" the same default client against the bare server.
ALL_PEERS = ("toolbridge", "toolbridge-sync", "unary", "grpc", "mcp-stdio", "mcp-http")
GRPC_PEERS = ("toolbridge", "grpc")
PINGPONG = "pingpong"


async def sequential(bench: Bench) -> None:
    cases = [(f"echo {size_label(size)}", echo_call(size)) for size in (10, 10 * KIB, MIB)]
    cases.append((f"compute n={COMPUTE_N}", COMPUTE))
    for case, call in cases:
        base = bench.counts.sequential_large if len(call.expected) >= MIB else bench.counts.sequential
        peers = (*ALL_PEERS, PINGPONG) if case == "echo 10 B" else ALL_PEERS
        for peer in bench.rotated(peers):
            if peer == PINGPONG:
                figures = await asyncio.to_thread(timed_pingpong, bench.pingpong_target, base)
            else:
                figures = await timed_sequential(bench.callers[peer], call, bench.count_for(peer, base))
            bench.record("sequential", case, peer, figures)


async def concurrent(bench: Bench) -> None:
    in_flight = bench.counts.in_flight
    for case, call in (
        (f"echo 10 B x{in_flight}", echo_call(10)),
        (f"compute x{in_flight}", COMPUTE),
    ):
        for peer in bench.rotated(ALL_PEERS):
            n = bench.count_for(peer, bench.counts.concurrent)
            caller = bench.callers[peer]
            figures = (
                await timed_threads(caller, call, n, in_flight)
                if isinstance(caller, SyncCaller)
                else await timed_concurrent(caller, call, n, in_flight)
            )
            bench.record("concurrent", case, peer, figures)


async def beside_large(bench: Bench) -> None:
    """Small calls one at a time while another task keeps a 1 MiB echo in flight on the same client.

    The default client sends a request over 64 KiB through ExecuteTool rather than the shared
    call stream, so the small calls do not queue behind the large ones; "unary" (every call
    its own RPC) is the same measurement without a shared stream at all.
    """
    small, large = echo_call(10), echo_call(MIB)
    for peer in bench.rotated(("toolbridge", "unary")):
        caller = bench.callers[peer]
        stop = asyncio.Event()

        async def keep_large_in_flight(caller: Caller = caller, stop: asyncio.Event = stop) -> int:
            done = 0
            while not stop.is_set():
                large.check(caller.name, await caller.call(large.tool, large.kwargs))
                done += 1
            return done

        loader = asyncio.create_task(keep_large_in_flight())
        try:
            figures = await timed_sequential(caller, small, bench.counts.beside_large)
        finally:
            stop.set()
            large_calls = await loader
        if large_calls == 0:
            raise BenchError(f"{peer}: no 1 MiB call completed beside the small ones")
        bench.record("beside_large", "echo 10 B beside 1 MiB echoes", peer, figures)


async def stream(bench: Bench) -> None:
    chunks = bench.counts.stream_chunks
    for peer in bench.rotated(GRPC_PEERS):
        client = bench.grpc(peer)
        received = count = 0
        started = time.perf_counter()
        async for chunk in client.stream_tool("stream_bytes", chunks=chunks, chunk_bytes=CHUNK_BYTES):
            received += len(chunk)
            count += 1
        elapsed = time.perf_counter() - started
        if count != chunks or received != chunks * CHUNK_BYTES:
            raise BenchError(
                f"{peer}: stream gave {count} chunks / {received} bytes, expected {chunks} chunks"
            )
        bench.record(
            "stream",
            "64 KiB chunks",
            peer,
            {"mb_s": received / elapsed / 1e6, "chunks_s": count / elapsed},
        )


BATCHES_IN_FLIGHT = (1, 4)


def batch_case(size: int, in_flight: int) -> str:
    return f"{size} echo calls" if in_flight == 1 else f"{size} echo calls, {in_flight} in flight"


async def timed_batches(
    peer: str,
    client: ToolBridgeClient,
    call: Call,
    size: int,
    batches: int,
    in_flight: int,
) -> dict[str, float]:
    items = [{"tool_id": call.tool, "kwargs": call.kwargs}] * size
    remaining = batches

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            results = await client.execute_batch(items)
            if len(results) != size or any(result != call.expected for result in results):
                raise BenchError(f"{peer}: a batch of {size} echo calls came back wrong: {results[:3]!r}")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return {"calls_s": batches * size / (time.perf_counter() - started)}


async def batch(bench: Bench) -> None:
    """Batches one at a time (each waits for the last), then several in flight from one client."""
    size = bench.counts.batch_size
    for in_flight in BATCHES_IN_FLIGHT:
        for peer in bench.rotated(GRPC_PEERS):
            figures = await timed_batches(
                peer,
                bench.grpc(peer),
                echo_call(10),
                size,
                bench.counts.batches,
                in_flight,
            )
            bench.record("batch", batch_case(size, in_flight), peer, figures)


async def sessions(bench: Bench) -> None:
    for peer in bench.rotated((*GRPC_PEERS, "mcp-http")):
        if peer == "mcp-http":
            n = bench.counts.mcp_sessions
            url = bench.mcp_http_url
            started = time.perf_counter()
            for _ in range(n):
                async with Client(url):
                    pass
        else:
            n = bench.counts.sessions
            base = bench.grpc(peer)
            client = ToolBridgeClient(base.server_address, channel=base.channel)
            started = time.perf_counter()
            for _ in range(n):
                await client.initialize_session()
                await client.cleanup()
        elapsed = time.perf_counter() - started
        bench.record("sessions", "create + cleanup", peer, {"pairs_s": n / elapsed})


async def dspy_tool(bench: Bench) -> None:
    """A host tool as ``dspy.Tool`` against the raw client call it wraps: ``await tool.acall(...)``
    against the asyncio client, and ``tool(...)`` from sync code against the blocking client."""
    call = echo_call(10)
    bridge = GRPCToolBridge(bench.host_target)
    try:
        await bridge.initialize()
        tool = bridge.get_dspy_tool(call.tool)

        class DspyCaller:
            name = "dspy.Tool"

            async def call(self, tool_name: str, kwargs: dict[str, Any]) -> Any:
                return await tool.acall(**kwargs)

        class DspySyncCaller:
            name = "dspy.Tool"

            async def call(self, tool_name: str, kwargs: dict[str, Any]) -> Any:
                return tool(**kwargs)

        cases: list[tuple[str, dict[str, Caller]]] = [
            (
                "echo 10 B",
                {"dspy.Tool": DspyCaller(), "client": bench.callers["toolbridge"]},
            ),
            (
                "echo 10 B, sync",
                {
                    "dspy.Tool": DspySyncCaller(),
                    "client": bench.callers["toolbridge-sync"],
                },
            ),
        ]
        for case, callers in cases:
            for _ in range(bench.counts.warmup):
                call.check("dspy.Tool", await callers["dspy.Tool"].call(call.tool, call.kwargs))
            for peer in bench.rotated(tuple(callers)):
                figures = await timed_sequential(callers[peer], call, bench.counts.dspy_calls)
                bench.record("dspy", case, peer, figures)
        await bridge.cleanup()
    finally:
        await bridge.close()


Workload = Callable[[Bench], Awaitable[None]]
WORKLOADS: dict[str, Workload] = {
    "sequential": sequential,
    "concurrent": concurrent,
    "stream": stream,
    "batch": batch,
    "sessions": sessions,
    "dspy": dspy_tool,
    "beside_large": beside_large,
}
