"""ChannelPool over two real hosts, and GracefulShutdown of in-flight tool calls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from toolbridge import (
    ChannelPool,
    GracefulShutdown,
    HostProcess,
    ShuttingDownError,
    ToolBridgeClient,
)

from .conftest import spawn_host, wait_for


@pytest.fixture(scope="module")
async def two_hosts() -> AsyncIterator[tuple[HostProcess, HostProcess]]:
    first, second = await asyncio.gather(spawn_host(), spawn_host())
    yield first, second
    await asyncio.gather(first.stop(), second.stop())


async def add_calls(target: str) -> int:
    async with ToolBridgeClient(target) as client:
        metrics = await client.get_metrics()
    add = metrics.tools.get("add")
    return add.calls if add is not None else 0


async def test_the_pool_spreads_calls_over_two_host_processes(
    two_hosts: tuple[HostProcess, HostProcess],
) -> None:
    a, b = (host.target for host in two_hosts)
    before = {target: await add_calls(target) for target in (a, b)}

    async def worker(pool: ChannelPool, n: int) -> int:
        # Stateless worker: whichever host the pool picks, open a session there and call.
        async with ToolBridgeClient.from_pool(pool) as client:
            await client.initialize_session()
            result: int = await client.execute_tool("add", n, 1)
            await client.cleanup()
            return result

    async with ChannelPool([a, b], max_channels_per_target=2) as pool:
        assert await asyncio.gather(*(worker(pool, n) for n in range(8))) == [n + 1 for n in range(8)]
        assert pool.channel_counts() == {a: 2, b: 2}
        assert pool.targets == [a, b]
    assert {target: await add_calls(target) - before[target] for target in (a, b)} == {a: 4, b: 4}

    with pytest.raises(RuntimeError, match="closed"):
        await pool.get_channel()


async def test_the_pool_grows_to_its_limit_then_cycles(two_hosts: tuple[HostProcess, HostProcess]) -> None:
    target = two_hosts[0].target
    async with ChannelPool(max_channels_per_target=3) as pool:
        channels = [await pool.get_channel(target) for _ in range(7)]
        assert len({id(c) for c in channels}) == 3
        assert [channels.index(c) for c in channels] == [0, 1, 2, 0, 1, 2, 0]
        with pytest.raises(ValueError, match="no targets"):
            await pool.get_channel()
        # Every pooled channel really reaches the host.
        for channel in channels[:3]:
            async with ToolBridgeClient(target, channel=channel) as client:
                assert await client.health_check()
    with pytest.raises(ValueError, match="max_channels_per_target"):
        ChannelPool(max_channels_per_target=0)


async def test_graceful_shutdown_waits_for_calls_that_finish_in_time(client: ToolBridgeClient) -> None:
    shutdown = GracefulShutdown()
    call = asyncio.create_task(shutdown.run(client.execute_tool("slow", ms=200, tag="py-gs-finish")))
    await wait_for(lambda: _true(shutdown.active_count == 1))
    assert await shutdown.shutdown(timeout_ms=10_000) == 0
    assert await call == "done"
    assert shutdown.shutting_down


async def test_graceful_shutdown_cancels_calls_still_running_at_the_timeout(
    client: ToolBridgeClient,
) -> None:
    shutdown = GracefulShutdown()
    fast = asyncio.create_task(shutdown.run(client.execute_tool("add", 1, 2)))
    slow = asyncio.create_task(shutdown.run(client.execute_tool("slow", ms=10_000, tag="py-gs-cancel")))

    async def slow_started() -> bool:
        events = await client.execute_tool("events", tag="py-gs-cancel")
        return any(e["event"] == "started" for e in events)

    await wait_for(slow_started)
    assert await shutdown.shutdown(timeout_ms=300) == 1
    assert await fast == 3
    with pytest.raises(asyncio.CancelledError):
        await slow
    assert shutdown.active_count == 0

    # The cancelled RPC reached the host, which aborted the tool.
    async def aborted() -> bool:
        events = await client.execute_tool("events", tag="py-gs-cancel")
        return any(e["event"] == "aborted" and e["detail"] == "Cancelled" for e in events)

    await wait_for(aborted)

    coro = client.execute_tool("add", 1, 1)
    with pytest.raises(ShuttingDownError):
        await shutdown.run(coro)


async def test_get_metrics_reflects_calls_just_made(client: ToolBridgeClient) -> None:
    before = await client.get_metrics()
    await client.execute_tool("echo", "py-metrics")
    await client.execute_batch([{"tool_id": "echo", "args": [1]}])
    after = await client.get_metrics()
    echo_before = before.tools["echo"].calls if "echo" in before.tools else 0
    assert after.tools["echo"].calls == echo_before + 2
    assert after.batches_total == before.batches_total + 1
    assert after.active_sessions >= 1


async def _true(value: bool) -> bool:
    return value
