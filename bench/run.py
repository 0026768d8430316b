"""Benchmarks toolbridge against a bare gRPC server and against MCP, all in one run (``make bench``).

Each server runs as its own process on loopback; this Python process drives them all with the
same loops, repeats every workload, prints a table of ratios (median and min-max over repeats)
and writes the samples and summary as JSON to bench/results/.

    python bench/run.py                  full run (several minutes)
    python bench/run.py --smoke          tiny counts: checks the harness works, figures mean nothing
    python bench/run.py --repeats 3 --only sequential,batch
    python bench/run.py --report bench/results/latest.json --markdown   re-print a saved run
    python bench/run.py --only tracing --baseline ../main    tracing's cost, and this host against main's
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.cluster import cluster
from harness.mcp import MOUNT_WORKLOAD, SERVE, mcp
from harness.memory import memory
from harness.peers import (  # the harness lives next to this script
    REPO,
    BenchError,
    Caller,
    grpc_caller,
    grpc_echo_command,
    mcp_caller,
    mcp_http_command,
    mcp_stdio_parameters,
    pingpong_command,
    spawned,
    sync_caller,
    toolbridge_host,
)
from harness.report import render, summarize
from harness.stall import stall
from harness.stores import stores
from harness.tracing import tracing
from harness.workloads import SMOKE, WORKLOADS, Bench, Counts, Record, Results, warm_up

RESULTS_DIR = REPO / "bench" / "results"
ALL = [*WORKLOADS, "mcp", "stores", "tracing", "cluster", "stall", "memory"]


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError, ValueError):
        mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    npm_versions = {}
    for package in ("@grpc/grpc-js", "@modelcontextprotocol/server"):
        with contextlib.suppress(OSError, ValueError):
            manifest = json.loads((REPO / "node_modules" / package / "package.json").read_text())
            npm_versions[package] = manifest["version"]
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "os": platform.platform(),
        "node": node,
        "python": platform.python_version(),
        "packages": {
            **npm_versions,
            **{name: metadata.version(name) for name in ("grpcio", "protobuf", "h2", "mcp", "dspy")},
        },
    }


async def run(counts: Counts, repeats: int, only: list[str], baseline: Path | None = None) -> Results:
    results = Results()
    selected = [name for name in WORKLOADS if name in only]
    if selected:
        await run_against_peers(counts, repeats, selected, results)
    await run_own_processes(counts, repeats, only, results, baseline)
    return results


async def run_against_peers(counts: Counts, repeats: int, selected: list[str], results: Results) -> None:
    """The workloads that drive every peer from this process, all peers started once."""
    say("starting peers: toolbridge host, bare grpc-js server, MCP server (stdio and HTTP), raw socket echo")
    async with contextlib.AsyncExitStack() as stack:
        sockets = stack.enter_context(tempfile.TemporaryDirectory(prefix="toolbridge-bench-"))
        # Idle sessions may pile up across repeats; the session workload cleans up after itself.
        # The launcher puts the host on a Unix socket, as it does for any user; the bare server too.
        host = await stack.enter_async_context(toolbridge_host({"max-concurrent-sessions": 10_000}))
        bare = await stack.enter_async_context(spawned(grpc_echo_command(f"unix:{sockets}/bare.sock")))
        http = await stack.enter_async_context(spawned(mcp_http_command()))
        pingpong = await stack.enter_async_context(spawned(pingpong_command(f"{sockets}/pingpong.sock")))
        callers: dict[str, Caller] = {
            "toolbridge": await stack.enter_async_context(grpc_caller("toolbridge", host.target)),
            "toolbridge-sync": stack.enter_context(sync_caller("toolbridge-sync", host.target)),
            "unary": await stack.enter_async_context(grpc_caller("unary", host.target, multiplex=False)),
            "grpc": await stack.enter_async_context(grpc_caller("grpc", bare.target)),
            "mcp-stdio": await stack.enter_async_context(mcp_caller("mcp-stdio", mcp_stdio_parameters())),
            "mcp-http": await stack.enter_async_context(mcp_caller("mcp-http", http.target)),
        }
        bench = Bench(callers, counts, results, host.target, http.target, pingpong.target)
        say("warming up every peer (untimed)")
        await warm_up(bench)
        for repeat in range(repeats):
            bench.repeat = repeat
            say(f"repeat {repeat + 1} of {repeats}: {', '.join(selected)}")
            for name in selected:
                await WORKLOADS[name](bench)


async def run_own_processes(
    counts: Counts,
    repeats: int,
    only: list[str],
    results: Results,
    baseline: Path | None = None,
) -> None:
    """The workloads that start processes of their own (hosts on Redis, probes, client processes)."""
    if "mcp" in only:
        say(
            "mcp: the Python MCP client on the host's MCP endpoint and on a bare MCP server (HTTP); the "
            "toolbridge client on that server mounted into the host, and the MCP client on it (stdio); "
            f"{repeats} repeat(s)"
        )

        def mcp_line(case: str, peer: str, figures: dict[str, float]) -> str:
            return f"{case:<22} {peer:<18} calls/s {figures['calls_s']:,.1f}"

        await mcp(
            counts,
            repeats,
            {workload: recorder(results, workload, mcp_line) for workload in (SERVE, MOUNT_WORKLOAD)},
        )
    if "stores" in only:
        say(
            "stores: hosts on the memory store, on the Redis store (a redis-server), on a Redis Cluster"
            " of 3 masters, and on a redis-server with 2 replicas without and with storeWaitReplicas 1;"
            f" {repeats} repeat(s) of ExecuteTool and SetVariable"
        )

        def stores_line(case: str, peer: str, figures: dict[str, float]) -> str:
            return f"{case:<26} {peer:<14} calls/s {figures['calls_s']:,.1f}"

        await stores(counts, repeats, recorder(results, "stores", stores_line))
    if "tracing" in only:
        say(
            "tracing: a host with tracing off, one with every call traced to a local OTLP receiver"
            + (f", and the host of {baseline}" if baseline is not None else "")
            + f"; {repeats} repeat(s)"
        )

        def tracing_line(case: str, peer: str, figures: dict[str, float]) -> str:
            return (
                f"{case:<22} {peer:<12} calls/s {figures['calls_s']:,.1f}"
                f"  host CPU/call {figures['host_cpu_us']:,.1f} us"
            )

        await tracing(counts, repeats, recorder(results, "tracing", tracing_line), baseline)
    if "stall" in only:
        say(
            "stall: a probe process's small calls while the host processes its largest allowed request"
            f" ({counts.stall_entries:,}-entry map) and refuses a {counts.stall_refused:,}-entry one"
        )

        def stall_line(case: str, peer: str, figures: dict[str, float]) -> str:
            shown = ", ".join(f"{metric} {value:,.1f}" for metric, value in figures.items())
            return f"{case:<44} {peer:<10} {shown}"

        await stall(counts, repeats, recorder(results, "stall", stall_line))
    if "cluster" in only:
        say(
            "cluster: three hosts on one Redis, three client processes (64 in flight each) on one node,"
            f" then spread over the three; {repeats} repeat(s)"
        )

        def cluster_line(_case: str, peer: str, figures: dict[str, float]) -> str:
            busy = ", ".join(f"{k[: -len('_cores')]} {v:.2f}" for k, v in figures.items() if "cores" in k)
            return (
                f"{peer:<8} calls/s {figures['calls_s']:,.1f} (CPU cores busy: {busy};"
                f" load average {figures['loadavg_1m']:.1f} on {os.cpu_count()} CPUs)"
            )

        await cluster(counts, repeats, recorder(results, "cluster", cluster_line))
    if "memory" in only:
        sizes = ", ".join(f"{n:,}" for n in counts.memory_sessions)
        say(
            f"memory: a fresh host, RSS at rest and with {sizes} idle sessions"
            " (once; creating them takes a while)"
        )

        def record(peer: str, case: str, figures: dict[str, float]) -> None:
            for metric, value in figures.items():
                results.add("memory", case, peer, metric, value)
            print(
                f"      memory      {case:<22} {peer:<10} rss {figures['rss_mb']:,.1f} MB",
                file=sys.stderr,
            )

        await memory(counts, record)


def recorder(results: Results, workload: str, line: Callable[[str, str, dict[str, float]], str]) -> Record:
    """Records a case's figures under ``workload`` and prints ``line`` of them as progress."""

    def record(case: str, peer: str, figures: dict[str, float]) -> None:
        for metric, value in figures.items():
            results.add(workload, case, peer, metric, value)
        print(f"      {workload:<11} {line(case, peer, figures)}", file=sys.stderr)

    return record


def say(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny counts, one repeat: the harness's self-test",
    )
    parser.add_argument("--repeats", type=int, help="repeats of every workload (default 5, smoke 1)")
    parser.add_argument("--only", help=f"comma-separated workloads among {', '.join(ALL)} (default all)")
    parser.add_argument(
        "--out",
        type=Path,
        help="JSON file to write (default bench/results/<time>.json)",
    )
    parser.add_argument(
        "--report",
        type=Path,
        help="print the tables of a saved JSON run instead of running",
    )
    parser.add_argument(
        "--markdown",
        action="store_true",
        help="print the tables as Markdown (for docs/benchmarks.md)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a built checkout of another branch (e.g. main), whose host the tracing workload runs too",
    )
    args = parser.parse_args(argv)

    if args.report is not None:
        saved = json.loads(args.report.read_text())
        print(render(saved["samples"], markdown=args.markdown))
        return 0

    only = ALL if args.only is None else [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(only) - set(ALL))
    if unknown:
        parser.error(f"unknown workloads {', '.join(unknown)}; choose among {', '.join(ALL)}")
    repeats = args.repeats or (1 if args.smoke else 5)
    if repeats < 1:
        parser.error("--repeats must be at least 1")
    counts = SMOKE if args.smoke else Counts()

    started = time.monotonic()
    try:
        results = asyncio.run(run(counts, repeats, only, args.baseline))
    except BenchError as error:
        print(f"bench failed: {error}", file=sys.stderr)
        return 1
    document = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "smoke": args.smoke,
        "repeats": repeats,
        "counts": counts.__dict__,
        "duration_s": round(time.monotonic() - started, 1),
        "samples": results.figures,
        **summarize(results.figures),
    }
    out = args.out or RESULTS_DIR / f"{document['date'].replace(':', '')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=1))
    if args.out is None:
        (RESULTS_DIR / "latest.json").write_text(json.dumps(document, indent=1))
    print(render(results.figures, markdown=args.markdown))
    info = document["machine"]
    print(
        f"\n{info['cpus']} CPUs ({info['cpu_model']}), {info['memory_gib']} GiB, Node {info['node']}, "
        f"Python {info['python']}; {repeats} repeat(s) in {document['duration_s']} s; results in {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
