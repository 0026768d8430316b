"""The memory workload: host RSS at rest and with many idle sessions, next to the bare server's.

Run once, outside ``Bench``: it starts hosts of its own, and creating the sessions takes a while.
"""

from __future__ import annotations

import asyncio

from toolbridge import ToolBridgeClient

from .peers import BenchError, grpc_echo_command, rss_bytes, spawned, toolbridge_host
from .workloads import SMOKE, Counts, Record, echo_call


async def settled_rss(pid: int, settle_s: float) -> int:
    """RSS after a pause, so that garbage from the creation burst has had a chance to be collected."""
    await asyncio.sleep(settle_s)
    return rss_bytes(pid)


async def memory(counts: Counts, record: Record) -> None:
    """Host RSS at rest and with idle sessions; the bare server's RSS at rest is the floor of the stack."""
    settle = 0.5 if counts is SMOKE else 3.0
    async with spawned(grpc_echo_command()) as bare:
        client = ToolBridgeClient(bare.target)
        await client.initialize_session()
        echo = echo_call(10)
        echo.check("grpc", await client.call_tool(echo.tool, (), echo.kwargs))
        await client.close()
        record("grpc", "0 sessions", {"rss_mb": await settled_rss(bare.pid, settle) / 1e6})
    most = max(counts.memory_sessions)
    flags: dict[str, str | int] = {
        "max-concurrent-sessions": most + 100,
        "session-timeout-ms": 3_600_000,
    }
    async with toolbridge_host(flags) as host:
        pid = host.process.pid
        first = ToolBridgeClient(host.target)
        await first.initialize_session()
        echo.check("toolbridge", await first.call_tool(echo.tool, (), echo.kwargs))
        await first.cleanup()
        record("toolbridge", "0 sessions", {"rss_mb": await settled_rss(pid, settle) / 1e6})
        created = 0
        for target in sorted(counts.memory_sessions):
            await create_sessions(first, target - created, counts.in_flight)
            created = target
            info = await first.get_metrics()
            if info.active_sessions < target:
                raise BenchError(f"the host reports {info.active_sessions} sessions, expected {target}")
            rss = await settled_rss(pid, settle)
            record("toolbridge", f"{target} sessions", {"rss_mb": rss / 1e6})
        await first.close()


async def create_sessions(base: ToolBridgeClient, n: int, in_flight: int) -> None:
    remaining = n

    async def worker() -> None:
        nonlocal remaining
        client = ToolBridgeClient(base.server_address, channel=base.channel)
        while remaining > 0:
            remaining -= 1
            await client.initialize_session()

    await asyncio.gather(*(worker() for _ in range(in_flight)))
