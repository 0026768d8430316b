"""The Redis session store from a Python worker: a host process restarted on the same Redis
keeps the worker's session, variables and agent records, and a watch resumes where it stopped.

A real ``redis-server`` (Debian's package; ``make test`` installs it when missing) runs on a
free loopback port with its files in a temporary directory (``toolbridge.launch.redis``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from toolbridge import SessionContext, ToolBridgeClient, VariableUpdate
from toolbridge.agent.model import AgentDefinition
from toolbridge.agent.store import SessionVariableAgentStore
from toolbridge.launch.redis import launch_redis_server

from .conftest import spawn_host


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    async with launch_redis_server() as url:
        yield url


async def _serving(client: ToolBridgeClient) -> None:
    for _ in range(200):
        if await client.health_check(timeout_ms=500):
            return
        await asyncio.sleep(0.05)
    pytest.fail("the restarted host never answered")


async def test_a_restarted_host_keeps_the_session_and_the_watch_resumes(redis_url: str) -> None:
    first = await spawn_host({"store": redis_url, "port": 0})
    port = first.target.rsplit(":", 1)[1]
    second = None
    async with ToolBridgeClient(first.target) as client:
        try:
            session_id = (await client.initialize_session(metadata={"owner": "python-worker"})).session_id
            async with SessionContext(client) as session:
                await session.set_variable("plan", ["search", "compute"])
                async with session.watch(["plan"]) as watch:
                    await session.set_variable("plan", ["search", "compute", "answer"])
                    seen: VariableUpdate = await anext(watch)
            agents = SessionVariableAgentStore(client)
            definition = AgentDefinition("react_demo", "question -> answer", "", ("add",), 3)
            await agents.save_definition(definition)
            assert (seen.kind, seen.version, seen.sequence) == ("set", 2, 2)
            assert await client.execute_tool("add", 1, 2) == 3
            assert await first.stop() == 0

            second = await spawn_host({"store": redis_url, "port": port})
            await _serving(client)
            # No retry helper and no re-created session: the host finds it in Redis.
            assert await client.execute_tool("add", 20, b=22) == 42
            async with SessionContext(client) as session:
                assert await session.get_variable("plan", fresh=True) == ["search", "compute", "answer"]
                assert await agents.load_definition("react_demo") == definition
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
