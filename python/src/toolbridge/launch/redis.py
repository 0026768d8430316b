"""Starts a throwaway Redis for the Redis session store, for scripts, tests and benchmarks:
Debian's ``redis-server`` on free loopback ports, its files in a temporary directory that is
removed afterwards, no persistence. One server, a server with replicas, or a Redis Cluster.

async with launch_redis_server() as url:          # "redis://127.0.0.1:<port>/0"
    async with launch_host(["tools.ts"], {"store": url}) as host: ...
async with launch_redis_server(replicas=1) as url:     # the master's URL; its replica in sync
async with launch_redis_cluster() as url:          # "redis+cluster://127.0.0.1:<port>,..."
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path


class RedisLaunchError(RuntimeError):
    """redis-server is missing, or did not accept connections."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def launch_redis_server(*, replicas: int = 0, startup_timeout_ms: float = 10_000) -> AsyncIterator[str]:
    """Runs redis-server (and ``replicas`` replicas of it, in sync) until the block ends; yields its URL."""
    async with contextlib.AsyncExitStack() as stack:
        directory = stack.enter_context(_directory())
        port = await stack.enter_async_context(_server(directory, [], startup_timeout_ms))
        for _ in range(replicas):
            await stack.enter_async_context(
                _server(directory, ["--replicaof", "127.0.0.1", str(port)], startup_timeout_ms)
            )
        if replicas:
            await _until(
                lambda: _in_sync(port, replicas), startup_timeout_ms, f"{replicas} replica(s) did not sync"
            )
        yield f"redis://127.0.0.1:{port}/0"


@contextlib.asynccontextmanager
async def launch_redis_cluster(*, masters: int = 3, startup_timeout_ms: float = 20_000) -> AsyncIterator[str]:
    """Runs a Redis Cluster of ``masters`` masters until the block ends; yields its ``redis+cluster://`` URL.

    Each node is ``redis-server --cluster-enabled yes`` on free ports (its own and its cluster
    bus's); ``redis-cli --cluster create`` joins them and spreads the slots over them.
    """
    async with contextlib.AsyncExitStack() as stack:
        directory = stack.enter_context(_directory())
        ports = []
        for index in range(masters):
            node = Path(directory) / str(index)
            node.mkdir()
            cluster = ["--cluster-enabled", "yes", "--cluster-port", str(_free_port())]
            cluster += ["--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"]
            ports.append(await stack.enter_async_context(_server(str(node), cluster, startup_timeout_ms)))
        nodes = [f"127.0.0.1:{port}" for port in ports]
        created = await _run("redis-cli", "--cluster", "create", *nodes, "--cluster-yes")
        if created is None:
            raise RedisLaunchError(f"redis-cli --cluster create {' '.join(nodes)} failed")

        async def formed() -> bool:
            states = [await _run("redis-cli", "-p", str(port), "cluster", "info") for port in ports]
            return all(state is not None and "cluster_state:ok" in state for state in states)

        await _until(formed, startup_timeout_ms, "the Redis Cluster did not reach cluster_state:ok")
        yield "redis+cluster://" + ",".join(nodes)


@contextlib.contextmanager
def _directory() -> Iterator[str]:
    if shutil.which("redis-server") is None:
        raise RedisLaunchError(
            "redis-server is missing: install Debian's redis-server package (make redis-server)"
        )
    directory = tempfile.mkdtemp(prefix="toolbridge-redis-")
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.asynccontextmanager
async def _server(directory: str, extra: list[str], startup_timeout_ms: float) -> AsyncIterator[int]:
    """One redis-server on a free port, its files in ``directory``, until the block ends; yields the port."""
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        "redis-server",
        *("--port", str(port), "--bind", "127.0.0.1", "--dir", directory, "--save", ""),
        # A replica syncs at once (by default the master waits 5 s for more of them).
        *("--appendonly", "no", "--loglevel", "warning", "--repl-diskless-sync-delay", "0", *extra),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        try:
            await asyncio.wait_for(_accepting(port), startup_timeout_ms / 1000)
        except TimeoutError:
            raise RedisLaunchError(f"redis-server did not accept connections on port {port}") from None
        yield port
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def _run(*command: str) -> str | None:
    """The output of a command, or None when it failed."""
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    output, _ = await process.communicate()
    return output.decode() if process.returncode == 0 else None


async def _in_sync(port: int, replicas: int) -> bool:
    info = await _run("redis-cli", "-p", str(port), "info", "replication")
    return info is not None and info.count("state=online") >= replicas


async def _until(check: Callable[[], Awaitable[bool]], timeout_ms: float, failure: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_ms / 1000
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise RedisLaunchError(f"{failure} within {timeout_ms:g} ms")
        await asyncio.sleep(0.05)


async def _accepting(port: int) -> None:
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.02)
            continue
        writer.close()
        await writer.wait_closed()
        return
