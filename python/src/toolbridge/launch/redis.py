"""Starts a throwaway ``redis-server`` for the Redis session store, for scripts, tests and
benchmarks: Debian's ``redis-server`` on a free loopback port, its files in a temporary
directory that is removed afterwards, no persistence.

async with launch_redis_server() as url:          # "redis://127.0.0.1:<port>/0"
    async with launch_host(["tools.ts"], {"store": url}) as host: ...
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator


class RedisLaunchError(RuntimeError):
    """redis-server is missing, or did not accept connections."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def launch_redis_server(*, startup_timeout_ms: float = 10_000) -> AsyncIterator[str]:
    """Runs redis-server until the block ends; yields its URL."""
    if shutil.which("redis-server") is None:
        raise RedisLaunchError(
            "redis-server is missing: install Debian's redis-server package (make redis-server)"
        )
    directory = tempfile.mkdtemp(prefix="toolbridge-redis-")
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        "redis-server",
        *("--port", str(port), "--bind", "127.0.0.1", "--dir", directory, "--save", ""),
        *("--appendonly", "no", "--loglevel", "warning"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        try:
            await asyncio.wait_for(_accepting(port), startup_timeout_ms / 1000)
        except TimeoutError:
            raise RedisLaunchError(f"redis-server did not accept connections on port {port}") from None
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
        shutil.rmtree(directory, ignore_errors=True)


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
