"""A request id names one call, on the Calls stream (the client's tool calls) and in batches:
calls reusing one id with other arguments, at once, each get their own result or
``RequestIdReused`` (a ``ToolCallError``), never another call's result; the same call repeated
is still replayed. Against a host on the memory store and one on a real ``redis-server``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest

from toolbridge import HostProcess, ToolBridgeClient, ToolCallError
from toolbridge.core.errors import ErrorType
from toolbridge.launch.redis import launch_redis_server

from .conftest import spawn_host


@pytest.fixture(scope="module", params=["memory", "redis"])
async def store_host(request: pytest.FixtureRequest) -> AsyncIterator[HostProcess]:
    async with contextlib.AsyncExitStack() as stack:
        flags: dict[str, str | int] = {}
        if request.param == "redis":
            flags["store"] = await stack.enter_async_context(launch_redis_server())
        host = await spawn_host(flags)
        yield host
        assert await host.stop() == 0, host.output()


@pytest.fixture
async def client(store_host: HostProcess) -> AsyncIterator[ToolBridgeClient]:
    async with ToolBridgeClient(store_host.target) as connected:
        await connected.initialize_session()
        yield connected
        await connected.cleanup()


async def test_concurrent_calls_reusing_one_request_id_never_get_another_calls_result(
    client: ToolBridgeClient,
) -> None:
    assert client.transport.calls is not None
    outcomes = await asyncio.gather(
        *(client.call_tool("add", [k, 1], request_id="dup-req") for k in range(16)),
        return_exceptions=True,
    )
    ran = []
    for k, outcome in enumerate(outcomes):
        if isinstance(outcome, BaseException):
            assert isinstance(outcome, ToolCallError), repr(outcome)
            assert outcome.type == ErrorType.REQUEST_ID_REUSED
            assert outcome.details["request_id"] == "dup-req"
            assert outcome.details["reason"] == "request_id_reused"
        else:
            assert outcome == k + 1, f"add({k}, 1) got another call's result: {outcome}"
            ran.append(k)
    assert len(ran) == 1, ran
    # The id stays that call's: its repeat is replayed, another call is refused.
    assert await client.call_tool("add", [ran[0], 1], request_id="dup-req") == ran[0] + 1
    with pytest.raises(ToolCallError) as refused:
        await client.call_tool("add", [ran[0] + 1, 1], request_id="dup-req")
    assert refused.value.type == ErrorType.REQUEST_ID_REUSED


async def test_concurrent_batches_reusing_one_request_id_never_get_another_batchs_results(
    client: ToolBridgeClient,
) -> None:
    batches = await asyncio.gather(
        *(
            client.execute_batch(
                [{"tool_id": "add", "args": [10 * j + i, 1]} for i in range(3)], request_id="same-req"
            )
            for j in range(4)
        )
    )
    for i in range(3):
        ran = []
        for j, results in enumerate(batches):
            item = results[i]
            if isinstance(item, ToolCallError):
                assert item.type == ErrorType.REQUEST_ID_REUSED
                assert item.details["request_id"] == f"same-req/{i}"
            else:
                assert item == 10 * j + i + 1, f"batch {j} item {i} got another call's result: {item}"
                ran.append(j)
        assert len(ran) == 1, (i, ran)


async def test_the_same_call_repeated_is_replayed_and_runs_once(client: ToolBridgeClient) -> None:
    key = str(uuid.uuid4())
    request_id = f"retry-{key}"
    first = await client.call_tool("bump", kwargs={"key": key, "ms": 0}, request_id=request_id)
    again = await client.call_tool("bump", kwargs={"ms": 0, "key": key}, request_id=request_id)
    assert again == first
    assert await client.execute_tool("bumps", key=key) == 1
