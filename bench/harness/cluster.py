"""Several host nodes on one Redis against one: three hosts share a redis-server and three
client processes (bench/harness/load_client.py) make ExecuteTool calls, 64 in flight each;
once all on one node, once spread over the three. The aggregate rate of the two is the
ratio; the CPU time each kind of process used while the calls ran (from /proc) says what
limits it on a small machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path

from toolbridge.launch.redis import launch_redis_server

from .peers import BenchError, cpu_seconds, toolbridge_host
from .workloads import Counts, Record

CLUSTER_PEERS = ("1 node", "3 nodes")
CASE = "ExecuteTool echo 10 B, 3 clients x64"
LOAD_CLIENT = Path(__file__).resolve().parent / "load_client.py"


def redis_pid(url: str) -> int | None:
    """The redis-server of the URL, found by its process title (``redis-server 127.0.0.1:<port>``)."""
    address = url.removeprefix("redis://").split("/", 1)[0].encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            title = (entry / "cmdline").read_bytes()
            if title.startswith(b"redis-server") and address in title:
                return int(entry.name)
    return None


async def run_clients(
    targets: list[str], calls: int, in_flight: int, watched: dict[str, list[int]]
) -> dict[str, float]:
    """Starts one client per target, releases them together, and returns their aggregate rate and CPU use."""
    clients = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(LOAD_CLIENT),
            target,
            str(calls),
            str(in_flight),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for target in targets
    ]
    try:
        for client in clients:
            assert client.stdout is not None
            if (await client.stdout.readline()).strip() != b"ready":
                assert client.stderr is not None
                client.kill()
                failure = (await client.stderr.read()).decode(errors="replace")[-2000:]
                raise BenchError(f"a load client did not start:\n{failure}")
        groups = {**watched, "clients": [client.pid for client in clients]}
        before = {group: sum(cpu_seconds(pid) for pid in pids) for group, pids in groups.items()}
        for client in clients:
            assert client.stdin is not None
            client.stdin.write(b"go\n")
            await client.stdin.drain()
        reports = []
        for client in clients:
            assert client.stdout is not None
            assert client.stderr is not None
            line = await client.stdout.readline()
            if not line.startswith(b"{"):
                client.kill()
                failure = (await client.stderr.read()).decode(errors="replace")[-2000:]
                raise BenchError(f"a load client failed:\n{failure}")
            reports.append(json.loads(line))
        after = {group: sum(cpu_seconds(pid) for pid in pids) for group, pids in groups.items()}
        for client in clients:
            assert client.stdin is not None
            client.stdin.write(b"exit\n")
            await client.stdin.drain()
    finally:
        for client in clients:
            with contextlib.suppress(ProcessLookupError):
                client.kill()
            await client.wait()
    total = sum(report["calls"] for report in reports)
    if total != calls * len(targets):
        raise BenchError(f"{total} of {calls * len(targets)} calls finished")
    wall = max(r["end"] for r in reports) - min(r["start"] for r in reports)
    figures = {"calls_s": total / wall}
    # CPU cores each kind of process kept busy while the calls ran, and the machine's load
    # (every process's, others' included) over the last minute.
    for group in groups:
        figures[f"{group}_cores"] = max(1e-9, (after[group] - before[group]) / wall)
    figures["loadavg_1m"] = max(1e-9, os.getloadavg()[0])
    return figures


async def cluster(counts: Counts, repeats: int, record: Record) -> None:
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(launch_redis_server())
        hosts = [await stack.enter_async_context(toolbridge_host({"store": url})) for _ in range(3)]
        targets = [host.target for host in hosts]
        redis = redis_pid(url)
        for repeat in range(repeats):
            order = CLUSTER_PEERS if repeat % 2 == 0 else CLUSTER_PEERS[::-1]
            for peer in order:
                spread = targets if peer == "3 nodes" else [targets[0]] * 3
                watched = {"hosts": [host.process.pid for host in hosts]}
                if redis is not None:
                    watched["redis"] = [redis]
                record(
                    CASE,
                    peer,
                    await run_clients(spread, counts.concurrent, counts.in_flight, watched),
                )
