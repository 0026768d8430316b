"""The session stores against each other, driven by the same client loops in the same run, so
that each one's cost shows as a ratio: ExecuteTool (whose session check a node serves from its
lease) and SetVariable (one Redis round trip per write). The hosts: one on the memory store,
one on the Redis store (a redis-server started here), one on a Redis Cluster of three masters
(started here), and two on a redis-server with two replicas, one of them with the wait setting
(``storeWaitReplicas`` 1: each write waits for a replica's acknowledgement), so that the wait
setting's cost is its ratio to the same Redis without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time

from toolbridge import SessionContext, ToolBridgeClient
from toolbridge.launch.redis import launch_redis_cluster, launch_redis_server

from .peers import MAX_MESSAGE_BYTES, BenchError, GrpcCaller, toolbridge_host
from .workloads import Counts, Record, echo_call, timed_concurrent, timed_sequential

STORE_PEERS = ("memory-store", "redis-store", "redis-cluster", "redis-replicas", "redis-wait")
VALUE = "x" * 10


async def timed_sets(session: SessionContext, n: int, in_flight: int) -> dict[str, float]:
    """``n`` SetSessionVariable calls, ``in_flight`` at a time, each writer on its own variable."""
    remaining = n
    done = 0

    async def writer(index: int) -> None:
        nonlocal remaining, done
        name = f"bench_{index}"
        while remaining > 0:
            remaining -= 1
            await session.set_variable(name, VALUE)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(writer(i) for i in range(in_flight)))
    elapsed = time.perf_counter() - started
    if done != n or await session.get_variable("bench_0", fresh=True) != VALUE:
        raise BenchError(f"{done} of {n} variable writes finished, or the value read back is wrong")
    return {"calls_s": n / elapsed}


async def stores(counts: Counts, repeats: int, record: Record) -> None:
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(launch_redis_server())
        cluster = await stack.enter_async_context(launch_redis_cluster())
        replicated = await stack.enter_async_context(launch_redis_server(replicas=2))
        flags: dict[str, dict[str, str | int]] = {
            "memory-store": {"store": "memory"},
            "redis-store": {"store": url},
            "redis-cluster": {"store": cluster},
            "redis-replicas": {"store": replicated},
            "redis-wait": {"store": replicated, "store-wait-replicas": 1},
        }
        hosts = {peer: await stack.enter_async_context(toolbridge_host(flags[peer])) for peer in STORE_PEERS}
        try:
            await _measure(
                stack,
                {peer: host.target for peer, host in hosts.items()},
                counts,
                repeats,
                record,
            )
        except Exception:
            for peer, host in hosts.items():
                print(
                    f"--- last log lines of the {peer} host:\n{host.output()[-3000:]}",
                    file=sys.stderr,
                )
            raise


async def _measure(
    stack: contextlib.AsyncExitStack,
    targets: dict[str, str],
    counts: Counts,
    repeats: int,
    record: Record,
) -> None:
    """Every case on every host, back to back, in an order that reverses with the repeat."""
    clients: dict[str, ToolBridgeClient] = {}
    sessions: dict[str, SessionContext] = {}
    for peer, target in targets.items():
        client = ToolBridgeClient(target, max_message_bytes=MAX_MESSAGE_BYTES)
        stack.push_async_callback(client.close)
        await client.initialize_session()
        clients[peer] = client
        sessions[peer] = await stack.enter_async_context(SessionContext(client))
    echo = echo_call(10)
    in_flight = counts.in_flight
    for peer in STORE_PEERS:  # untimed warm-up of the hosts and of Redis
        for _ in range(counts.warmup):
            echo.check(peer, await clients[peer].call_tool(echo.tool, (), echo.kwargs))
            await sessions[peer].set_variable("bench_0", VALUE)
    for repeat in range(repeats):
        order = STORE_PEERS if repeat % 2 == 0 else STORE_PEERS[::-1]
        for peer in order:
            caller = GrpcCaller(peer, clients[peer])
            record(
                "ExecuteTool echo 10 B",
                peer,
                await timed_sequential(caller, echo, counts.sequential),
            )
        for peer in order:
            caller = GrpcCaller(peer, clients[peer])
            figures = await timed_concurrent(caller, echo, counts.concurrent, in_flight)
            record(f"ExecuteTool echo 10 B x{in_flight}", peer, figures)
        for peer in order:
            record(
                "SetVariable 10 B",
                peer,
                await timed_sets(sessions[peer], counts.sequential, 1),
            )
        for peer in order:
            figures = await timed_sets(sessions[peer], counts.concurrent, in_flight)
            record(f"SetVariable 10 B x{in_flight}", peer, figures)
