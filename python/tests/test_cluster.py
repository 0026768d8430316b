"""Three host processes on one Redis, used from Python through a ``ChannelPool``: every node
serves one state, and a node killed with SIGKILL under load loses no acknowledged write while
its clients continue on the other nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from toolbridge import ChannelPool, HostProcess, SessionContext, ToolBridgeClient, ToolBridgeError
from toolbridge.launch.redis import launch_redis_server

from .conftest import spawn_host

NODES = 3
DEMO = Path(__file__).resolve().parents[2] / "examples" / "cluster" / "demo.py"


@pytest.fixture
async def cluster() -> AsyncIterator[list[HostProcess]]:
    async with launch_redis_server() as url:
        hosts = list(await asyncio.gather(*(spawn_host({"store": url}) for _ in range(NODES))))
        try:
            yield hosts
        finally:
            for host in hosts:
                with contextlib.suppress(ProcessLookupError):
                    await host.stop()


async def _clients(
    stack: contextlib.AsyncExitStack, pool: ChannelPool, session_id: str = ""
) -> list[ToolBridgeClient]:
    """One client per pool target (the pool hands them out round robin), all in one session."""
    clients = [await stack.enter_async_context(ToolBridgeClient.from_pool(pool)) for _ in pool.targets]
    session_id = (await clients[0].initialize_session(session_id)).session_id
    for client in clients[1:]:
        await client.initialize_session(session_id)
    return clients


async def test_a_client_spread_over_three_nodes_sees_one_state(cluster: list[HostProcess]) -> None:
    async with ChannelPool([host.target for host in cluster]) as pool, contextlib.AsyncExitStack() as stack:
        clients = await _clients(stack, pool)
        assert sorted(client.server_address for client in clients) == sorted(h.target for h in cluster)
        served_by = {(await client.execute_tool("node_info"))["node"] for client in clients}
        assert len(served_by) == NODES

        for index, client in enumerate(clients):
            async with SessionContext(client) as session:
                await session.set_variable(f"from_{index}", {"node": index, "items": [index] * index})
        for client in clients:
            async with SessionContext(client) as session:
                seen = {
                    name: await session.get_variable(name, fresh=True)
                    for name in ("from_0", "from_1", "from_2")
                }
            assert seen == {f"from_{i}": {"node": i, "items": [i] * i} for i in range(NODES)}

        # A call repeated on another node under its request id is answered from the record.
        first = await clients[0].call_tool("bump", kwargs={"key": "spread"}, request_id="spread-1")
        again = await clients[2].call_tool("bump", kwargs={"key": "spread"}, request_id="spread-1")
        assert again == first
        counts = [await client.execute_tool("bumps", key="spread") for client in clients]
        assert sum(counts) == 1


async def test_a_node_killed_under_load_loses_no_acknowledged_write(cluster: list[HostProcess]) -> None:
    victim = cluster[0]
    async with ChannelPool([host.target for host in cluster]) as pool, contextlib.AsyncExitStack() as stack:
        clients = await _clients(stack, pool)
        survivors = [client for client in clients if client.server_address != victim.target]
        acknowledged: list[str] = []
        moved: list[int] = []
        killed = asyncio.Event()

        async def writer(index: int, client: ToolBridgeClient) -> None:
            """Writes one new variable per step; after a failure it goes on through another node."""
            for step in range(60):
                name = f"w{index}_{step}"
                while True:
                    try:
                        async with SessionContext(client) as session:
                            await session.set_variable(name, step)
                        acknowledged.append(name)
                        break
                    except ToolBridgeError:
                        # The write may or may not have landed; it is written again elsewhere.
                        client = survivors[index % len(survivors)]
                        moved.append(index)
                if step == 20 and index == 0:
                    killed.set()

        async def kill_when_loaded() -> None:
            await killed.wait()
            victim.send_signal(signal.SIGKILL)

        await asyncio.gather(kill_when_loaded(), *(writer(i, c) for i, c in enumerate(clients)))
        assert moved, "the killed node's writer never had to move"
        assert await victim.process.wait() == -signal.SIGKILL
        for client in survivors:
            async with SessionContext(client) as session:
                listed = {variable.name: variable.value for variable in await session.list_variables()}
            for name in acknowledged:
                assert name in listed, f"acknowledged write {name} is missing on {client.server_address}"
                assert listed[name] == int(name.rsplit("_", 1)[1])
        assert len(acknowledged) == NODES * 60


@pytest.mark.parametrize("store", ["redis", "redis-cluster"])
async def test_the_cluster_example_runs_on_after_a_node_is_killed(store: str) -> None:
    """``make demo-cluster`` (``CLUSTER=redis-cluster``: on a Redis Cluster), the demo of docs/demos.md."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(DEMO),
        "--store",
        store,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output = (await asyncio.wait_for(process.communicate(), 120))[0].decode()
    assert process.returncode == 0, output
    assert ("redis+cluster://" in output) == (store == "redis-cluster"), output
    assert "with SIGKILL" in output
    assert "12 orders placed, 0 lost" in output
