"""SyncToolBridgeClient is ToolBridgeClient without ``await``: the same public methods with the
same parameters, and the blocking proxies, batches and channel pool behave as the asyncio ones."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from toolbridge import (
    AsyncGRPCProxyTool,
    HostProcess,
    StreamingGRPCProxyTool,
    SyncChannelPool,
    SyncGRPCProxyTool,
    SyncStreamingGRPCProxyTool,
    SyncToolBridgeClient,
    ToolBridgeClient,
    ToolCallError,
)

from .conftest import spawn_host

TWINS = [
    (ToolBridgeClient, SyncToolBridgeClient),
    (AsyncGRPCProxyTool, SyncGRPCProxyTool),
    (StreamingGRPCProxyTool, SyncStreamingGRPCProxyTool),
]


def public_callables(cls: type) -> dict[str, Callable[..., Any]]:
    """The class's public methods, ``__call__`` and the class itself (its constructor), by name;
    properties and data left out."""
    members = {name: member for name, member in inspect.getmembers(cls) if not name.startswith("_")}
    members["(constructor)"] = cls
    if "__call__" in vars(cls) or any("__call__" in vars(base) for base in cls.__mro__[1:-1]):
        members["__call__"] = cls.__call__
    return {name: member for name, member in members.items() if callable(member)}


def parameters(function: Callable[..., Any]) -> list[tuple[str, Any, Any]]:
    """Each parameter's name, kind and default (annotations differ: a channel, a generator)."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


@pytest.mark.parametrize(("asyncio_class", "blocking_class"), TWINS, ids=lambda cls: cls.__name__)
def test_the_blocking_twin_has_the_same_public_methods_with_the_same_parameters(
    asyncio_class: type, blocking_class: type
) -> None:
    asyncio_methods, blocking_methods = public_callables(asyncio_class), public_callables(blocking_class)
    assert sorted(blocking_methods) == sorted(asyncio_methods)
    for name, method in asyncio_methods.items():
        assert parameters(blocking_methods[name]) == parameters(method), name
        assert not inspect.iscoroutinefunction(blocking_methods[name]), f"{name} must not need await"
    assert {name for name, method in asyncio_methods.items() if inspect.iscoroutinefunction(method)}


def test_the_comparison_sees_a_difference() -> None:
    class Twin:
        def execute_tool(self, tool_id: str, /, *args: Any, timeout_ms: int = 0) -> Any: ...

    class Other:
        def execute_tool(self, tool_id: str, /, *args: Any, timeout_s: int = 0) -> Any: ...

    assert parameters(Twin.execute_tool) != parameters(Other.execute_tool)
    assert "execute_tool" in public_callables(Twin)


async def test_blocking_proxies_call_the_host_like_the_asyncio_ones(
    host: HostProcess, client: ToolBridgeClient
) -> None:
    asyncio_tools = await client.proxy_tools()
    with SyncToolBridgeClient(host.target) as blocking:
        blocking.initialize_session(client.require_session())
        tools = blocking.proxy_tools()
        assert sorted(tools) == sorted(asyncio_tools)
        for name, tool in tools.items():
            twin = asyncio_tools[name]
            assert (tool.name, tool.description, tool.parameters_schema) == (
                twin.name,
                twin.description,
                twin.parameters_schema,
            )
            assert tool.__signature__ == twin.__signature__
            assert isinstance(tool, SyncStreamingGRPCProxyTool) == isinstance(twin, StreamingGRPCProxyTool)
        assert tools["add"](2, b=3) == 5
        assert tools["count"](n=3) == [{"i": 0}, {"i": 1}, {"i": 2}]
        counter = tools["count"]
        assert isinstance(counter, SyncStreamingGRPCProxyTool)
        assert list(counter.stream(n=2)) == [{"i": 0}, {"i": 1}]
        with pytest.raises(ToolCallError):
            tools["add"](1, "two")


def test_the_blocking_client_batches_through_the_shared_batch_module(host: HostProcess) -> None:
    with SyncToolBridgeClient(host.target) as client:
        client.initialize_session()
        results = client.execute_batch(
            [{"tool_id": "add", "args": [1, 2]}, {"tool_id": "fail", "kwargs": {"message": "no"}}],
            timeout_ms=5_000,
        )
        assert results[0] == 3
        assert isinstance(results[1], ToolCallError)
        assert results[1].details["index"] == 1
        client.cleanup()


async def test_the_blocking_pool_spreads_clients_over_two_host_processes() -> None:
    first, second = await spawn_host(), await spawn_host()
    try:
        a, b = first.target, second.target

        def stateless_worker(pool: SyncChannelPool, n: int) -> tuple[str, int]:
            with SyncToolBridgeClient.from_pool(pool) as pooled:
                pooled.initialize_session()
                result: int = pooled.execute_tool("add", n, 1)
                pooled.cleanup()
                return pooled.server_address, result

        with SyncChannelPool([a, b], max_channels_per_target=2) as pool, ThreadPoolExecutor(4) as threads:
            answers = list(threads.map(lambda n: stateless_worker(pool, n), range(8)))
            assert [result for _, result in answers] == [n + 1 for n in range(8)]
            assert sorted(target for target, _ in answers) == sorted([a] * 4 + [b] * 4)
            assert pool.channel_counts() == {a: 2, b: 2}
            assert pool.targets == [a, b]
        with pytest.raises(RuntimeError, match="closed"):
            pool.get_channel()
    finally:
        await first.stop()
        await second.stop()
