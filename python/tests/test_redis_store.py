"""The Redis session store from a Python worker: a host process restarted on the same Redis
keeps the worker's session, variables and agent records, and a watch resumes where it stopped.

A real ``redis-server`` (Debian's package; ``make test`` installs it when missing) runs on a
free loopback port with its files in a temporary directory.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator

import pytest

from toolbridge import SessionContext, ToolBridgeClient, VariableUpdate

from .conftest import spawn_host


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is missing: run 'make redis-server' (Debian's redis-server package)")
    directory = tempfile.mkdtemp(prefix="toolbridge-redis-")
    port = _free_port()
    server = await asyncio.create_subprocess_exec(
        "redis-server",
        *("--port", str(port), "--bind", "127.0.0.1", "--dir", directory, "--save", ""),
        *("--appendonly", "no", "--loglevel", "warning"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.kill()
        await server.wait()
        shutil.rmtree(directory, ignore_errors=True)


async def _serving(client: ToolBridgeClient) -> None:
    for _ in range(200):
        if await client.health_check(timeout_s=0.5):
            return
        await asyncio.sleep(0.05)
    pytest.fail("the restarted host never answered")


async def test_a_restarted_host_keeps_the_session_and_the_watch_resumes(redis_url: str) -> None:
    first = await spawn_host({"store": redis_url})
    port = first.target.rsplit(":", 1)[1]
    second = None
    async with ToolBridgeClient(first.target) as client:
        try:
            session_id = (await client.initialize_session(metadata={"owner": "python-worker"})).session_id
            async with SessionContext(client) as session:
                await session.set_variable("plan", ["search", "compute"])
                await session.set_variable("agent_demo", {"signature": "question -> answer"})
                async with session.watch(["plan"]) as watch:
                    await session.set_variable("plan", ["search", "compute", "answer"])
                    seen: VariableUpdate = await anext(watch)
            assert (seen.kind, seen.version, seen.sequence) == ("set", 2, 3)
            assert await client.execute_tool("add", 1, 2) == 3
            assert await first.stop() == 0

            second = await spawn_host({"store": redis_url, "port": port})
            await _serving(client)
            # No retry helper and no re-created session: the host finds it in Redis.
            assert await client.execute_tool("add", 20, b=22) == 42
            async with SessionContext(client) as session:
                assert await session.get_variable("plan", fresh=True) == ["search", "compute", "answer"]
                agent = await session.get_variable("agent_demo", fresh=True)
                assert agent == {"signature": "question -> answer"}
                assert (await client.session_info()).metadata == {"owner": "python-worker"}
                await session.set_variable("plan", [])
                async with session.watch(["plan"], resume_after=seen.sequence) as resumed:
                    missed = await anext(resumed)
            assert (missed.kind, missed.value, missed.version, missed.sequence) == ("set", [], 3, 4)
            assert client.session_id == session_id
        finally:
            await client.cleanup()
            if second is not None:
                assert await second.stop() == 0
            else:
                await first.stop()
