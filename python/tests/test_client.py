"""ToolBridgeClient end to end against the real host CLI over loopback: sessions, calls, streams, errors."""

from __future__ import annotations

import asyncio
import inspect
import math
from contextlib import aclosing
from datetime import UTC, datetime
from typing import Any

import grpc
import numpy as np
import pytest

from toolbridge import (
    NO_DEFAULT,
    AsyncGRPCProxyTool,
    ErrorType,
    HostProcess,
    InvalidValueError,
    SessionError,
    StreamingGRPCProxyTool,
    ToolBridgeClient,
    ToolCallError,
    ToolCommunicationError,
    ToolExecutionError,
    create_grpc_channel,
    health_check,
)

from .conftest import spawn_host, wait_for


async def connect(host: HostProcess, session_id: str = "", **options: Any) -> ToolBridgeClient:
    client = ToolBridgeClient(host.target, **options)
    await client.initialize_session(session_id)
    return client


async def test_initializes_attaches_and_lists_tool_specs(host: HostProcess, client: ToolBridgeClient) -> None:
    async with ToolBridgeClient(host.target) as other:
        session = await other.initialize_session(client.session_id or "")
        assert session.created is False
        assert session.session_id == client.session_id
        assert "streaming" in session.capabilities
        assert session.tool_count >= 10

    tools = {spec.name: spec for spec in await client.list_tools()}
    add = tools["add"]
    assert add.description == "Adds two numbers."
    assert [(p.name, p.type, p.required, p.description) for p in add.parameters] == [
        ("a", "number", True, "First addend"),
        ("b", "number", True, "Second addend"),
    ]
    assert add.parameters_schema["required"] == ["a", "b"]
    assert add.cacheable
    assert add.idempotent
    assert not add.streaming
    assert [(p.name, p.default) for p in tools["describe_args"].parameters] == [
        ("name", NO_DEFAULT),
        ("count", 1),
        ("ratio", NO_DEFAULT),
        ("mode", "fast"),
        ("tags", []),
    ]
    assert tools["count"].streaming
    assert tools["slow_short_timeout"].timeout_ms == 200


async def test_executes_with_positional_and_keyword_arguments(client: ToolBridgeClient) -> None:
    assert await client.execute_tool("add", a=2, b=3.5) == 5.5
    assert await client.execute_tool("add", 41, b=1) == 42
    assert await client.execute_tool("add", 1, 2) == 3
    assert await client.execute_tool("describe_args", name="ada") == {
        "name": "ada",
        "count": 1,
        "mode": "fast",
        "tags": [],
    }


async def test_round_trips_every_value_kind(client: ToolBridgeClient) -> None:
    when = datetime(2026, 11, 24, 12, 0, 0, 123000, tzinfo=UTC)
    value = {
        "big": 2**80,
        "beyond_safe": 2**60,
        "negative": -(2**63),
        "nan": math.nan,
        "inf": -math.inf,
        "neg_zero": -0.0,
        "bytes": b"\x00\x01\x00\xff",
        "when": when,
        "tensor": np.arange(6, dtype=np.int16).reshape(2, 3),
        "scalar": np.array(2.5, dtype=np.float64),
        "nested": [{"z": 1, "a": [None, True, "é"]}],
        "empty": {"list": [], "map": {}, "text": ""},
    }
    echoed = await client.execute_tool("echo", value)
    assert list(echoed) == list(value)
    assert echoed["big"] == 2**80
    assert echoed["beyond_safe"] == 2**60
    assert echoed["negative"] == -(2**63)
    assert math.isnan(echoed["nan"])
    assert echoed["inf"] == -math.inf
    assert math.copysign(1.0, echoed["neg_zero"]) == -1.0
    assert echoed["bytes"] == b"\x00\x01\x00\xff"
    assert echoed["when"] == when
    assert echoed["tensor"].dtype == np.int16
    assert echoed["tensor"].shape == (2, 3)
    assert echoed["tensor"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert echoed["scalar"].shape == ()
    assert echoed["nested"] == [{"z": 1, "a": [None, True, "é"]}]
    assert list(echoed["nested"][0]) == ["z", "a"]
    assert echoed["empty"] == {"list": [], "map": {}, "text": ""}


async def test_map_key_order_survives_a_typescript_tool(client: ToolBridgeClient) -> None:
    """JavaScript lists integer-like keys first; the host keeps the order a map arrived in."""
    value = {"b": 1, "10": 2, "a": [{"9": 0, "x": 0, "1": 0}], "2": 4}
    echoed = await client.execute_tool("echo", value)
    assert list(echoed) == ["b", "10", "a", "2"]
    assert list(echoed["a"][0]) == ["9", "x", "1"]
    assert echoed == value


async def test_rejects_an_argument_it_cannot_encode_before_sending(client: ToolBridgeClient) -> None:
    with pytest.raises(InvalidValueError, match="argument 'value'") as info:
        await client.execute_tool("echo", value={"ok": [object()]})
    assert info.value.path == "$.ok[0]"


async def test_streams_chunks_in_order_and_completes(client: ToolBridgeClient) -> None:
    assert [chunk async for chunk in client.stream_tool("count", n=5)] == [{"i": i} for i in range(5)]
    assert [chunk async for chunk in client.stream_tool("count", 0)] == []


async def test_unknown_session(host: HostProcess) -> None:
    doomed = await connect(host)
    gone = await connect(host, doomed.session_id or "")
    await doomed.cleanup()
    with pytest.raises(SessionError) as info:
        await gone.execute_tool("add", a=1, b=2)
    assert info.value.type == ErrorType.SESSION_NOT_FOUND
    assert "InitializeSession" in info.value.message
    await doomed.close()
    await gone.close()


async def test_calls_before_a_session_fail_clearly(host: HostProcess) -> None:
    async with ToolBridgeClient(host.target) as fresh:
        with pytest.raises(SessionError, match="initialize_session"):
            await fresh.execute_tool("add", 1, 2)


async def test_unknown_tool_lists_the_tools_that_exist(client: ToolBridgeClient) -> None:
    with pytest.raises(ToolCallError) as info:
        await client.execute_tool("nope")
    assert info.value.type == ErrorType.TOOL_NOT_FOUND
    assert not isinstance(info.value, ToolExecutionError), "the tool did not run, so it did not raise"
    assert info.value.tool_name == "nope"
    assert "available: echo, add" in info.value.message


async def test_schema_failures_name_the_field(client: ToolBridgeClient) -> None:
    with pytest.raises(ToolCallError) as info:
        await client.execute_tool("add", a=1, b="two")
    assert info.value.type == ErrorType.VALIDATION_ERROR
    assert type(info.value) is ToolCallError
    assert info.value.details["field"] == "b"
    assert "expected number" in info.value.reason
    with pytest.raises(ToolCallError, match="multiple values for argument 'a'"):
        await client.execute_tool("add", 1, a=1)
    with pytest.raises(ToolCallError) as info:
        await client.execute_tool("add", a=1, b=2, c=3)
    assert info.value.details["field"] == "c"


async def test_a_tool_that_raises(client: ToolBridgeClient) -> None:
    with pytest.raises(ToolExecutionError) as info:
        await client.execute_tool("fail", message="disk on fire")
    assert info.value.type == ErrorType.TOOL_EXECUTION_ERROR
    assert isinstance(info.value, ToolCallError)
    assert info.value.tool_name == "fail"
    assert str(info.value) == "Tool 'fail' failed (ToolExecutionError): disk on fire"
    assert info.value.reason == "disk on fire"
    assert info.value.details["exception"] == "RangeError"
    assert "stacktrace" not in info.value.details


async def test_timeout_fires_the_tools_abort_signal(client: ToolBridgeClient) -> None:
    with pytest.raises(ToolCallError) as info:
        await client.execute_tool("slow_short_timeout", ms=5000, tag="py-timeout")
    assert info.value.type == ErrorType.TIMEOUT
    assert info.value.details["timeout_ms"] == "200"
    assert await client.execute_tool("events", tag="py-timeout") == [
        {"tag": "py-timeout", "event": "aborted", "detail": "Timeout"}
    ]


async def test_per_call_timeout(client: ToolBridgeClient) -> None:
    with pytest.raises(ToolCallError) as info:
        await client.call_tool("slow", kwargs={"ms": 5000, "tag": "py-call-timeout"}, timeout_ms=150)
    assert info.value.type == ErrorType.TIMEOUT
    assert info.value.details["timeout_ms"] == "150"


async def test_cancelling_a_call_aborts_the_tool(client: ToolBridgeClient) -> None:
    task = asyncio.create_task(client.execute_tool("slow", ms=5000, tag="py-cancel"))
    await started(client, "py-cancel")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    async def aborted() -> bool:
        events = await client.execute_tool("events", tag="py-cancel")
        return any(e["event"] == "aborted" and e["detail"] == "Cancelled" for e in events)

    await wait_for(aborted)


async def test_a_failing_stream_sends_its_error_after_the_data(client: ToolBridgeClient) -> None:
    seen: list[Any] = []

    async def read_all() -> None:
        async for chunk in client.stream_tool("fail_stream", after=3, message="midway"):
            seen.append(chunk)

    with pytest.raises(ToolExecutionError) as info:
        await read_all()
    assert seen == [0, 1, 2]
    assert info.value.type == ErrorType.TOOL_EXECUTION_ERROR
    assert info.value.reason == "midway"
    assert info.value.tool_name == "fail_stream"


async def test_stopping_to_read_a_stream_aborts_the_tool(client: ToolBridgeClient) -> None:
    read = 0
    async with aclosing(client.stream_tool("count", n=1000, delay_ms=20, tag="py-stop")) as stream:
        async for _ in stream:
            read += 1
            if read == 3:
                break

    async def closed() -> bool:
        events = await client.execute_tool("events", tag="py-stop")
        return {"aborted", "stream-closed"} <= {e["event"] for e in events}

    await wait_for(closed)
    produced = await client.execute_tool("produced", tag="py-stop")
    assert produced < 20, f"the tool kept producing after the client left: {produced}"


async def test_a_paused_reader_pauses_the_tool(client: ToolBridgeClient) -> None:
    total = 2000
    async with aclosing(
        client.stream_tool("count", n=total, payload_bytes=65536, tag="py-pressure")
    ) as stream:
        for _ in range(3):
            await anext(stream)
        await asyncio.sleep(0.6)
        while_paused = await client.execute_tool("produced", tag="py-pressure")
        rest = [chunk async for chunk in stream]
    assert while_paused < 200, f"the host buffered {while_paused} of {total} chunks for a paused reader"
    assert len(rest) == total - 3
    assert rest[-1]["i"] == total - 1


async def test_a_request_over_the_message_limit(host: HostProcess, client: ToolBridgeClient) -> None:
    big = await connect(host, client.session_id or "", max_message_bytes=32 * 1024 * 1024)
    with pytest.raises(ToolCommunicationError) as info:
        await big.execute_tool("echo", b"\x00" * (11 * 1024 * 1024))
    assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in info.value.message
    await big.close()
    assert await client.execute_tool("add", 1, 1) == 2


async def test_a_result_over_the_message_limit_is_reported_in_band(client: ToolBridgeClient) -> None:
    with pytest.raises(ToolCallError) as info:
        await client.execute_tool("bytes", size=11 * 1024 * 1024)
    assert info.value.type == ErrorType.RESOURCE_EXHAUSTED
    assert "maxMessageBytes" in info.value.reason
    assert len(await client.execute_tool("bytes", size=1024)) == 1024


async def test_health_heartbeat_and_session_info(host: HostProcess, client: ToolBridgeClient) -> None:
    channel = create_grpc_channel(host.target)
    assert await health_check(channel)
    await channel.close(None)
    before = await client.session_info()
    assert before.session_id == client.session_id
    await asyncio.sleep(0.02)
    assert await client.heartbeat() > before.expires_at


async def test_health_check_is_false_when_nothing_listens() -> None:
    channel = create_grpc_channel("127.0.0.1:1")
    assert not await health_check(channel, timeout_ms=1_000)
    await channel.close(None)


async def test_cleanup_twice_is_harmless(host: HostProcess) -> None:
    temp = await connect(host)
    await temp.cleanup()
    await temp.cleanup()
    with pytest.raises(SessionError):
        await temp.execute_tool("add", 1, 1)
    await temp.close()


async def test_proxy_tools_carry_name_description_schema_and_signature(client: ToolBridgeClient) -> None:
    proxies = await client.proxy_tools()
    add = proxies["add"]
    assert isinstance(add, AsyncGRPCProxyTool)
    assert add.name == "add"
    assert add.__doc__ == "Adds two numbers."
    assert add.parameters_schema["properties"]["a"]["type"] == "number"
    assert str(inspect.signature(add)) == "(a: float, b: float)"
    assert await add(2, b=3) == 5
    described = inspect.signature(proxies["describe_args"])
    assert list(described.parameters) == ["name", "count", "ratio", "mode", "tags"]
    assert described.parameters["count"].default == 1
    assert described.parameters["name"].annotation is str

    count = proxies["count"]
    assert isinstance(count, StreamingGRPCProxyTool)
    assert await count(n=3) == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert [c async for c in count.stream(n=2)] == [{"i": 0}, {"i": 1}]
    with pytest.raises(ToolExecutionError, match="midway"):
        await proxies["fail_stream"](after=1, message="midway")


async def test_session_expiry_and_heartbeat() -> None:
    host = await spawn_host({"session-timeout-ms": 400, "sweep-interval-ms": 50})
    try:
        idle = await connect(host)
        busy = await connect(host)
        for _ in range(6):
            await asyncio.sleep(0.1)
            await busy.heartbeat()
        with pytest.raises(SessionError) as info:
            await idle.execute_tool("add", 1, 1)
        assert info.value.type == ErrorType.SESSION_NOT_FOUND
        assert await busy.execute_tool("add", 1, 1) == 2
        await idle.close()
        await busy.close()
    finally:
        assert await host.stop() == 0


async def test_session_limit() -> None:
    host = await spawn_host({"max-concurrent-sessions": 2})
    try:
        first = await connect(host)
        second = await connect(host)
        third = ToolBridgeClient(host.target)
        with pytest.raises(SessionError) as info:
            await third.initialize_session()
        assert info.value.type == ErrorType.SESSION_LIMIT_EXCEEDED
        await first.cleanup()
        assert (await third.initialize_session()).created
        for c in (first, second, third):
            await c.close()
    finally:
        assert await host.stop() == 0


async def started(client: ToolBridgeClient, tag: str) -> None:
    """Waits until the test tools recorded that the call tagged ``tag`` started."""

    async def recorded() -> bool:
        return any(e["event"] == "started" for e in await client.execute_tool("events", tag=tag))

    await wait_for(recorded)


async def not_serving(client: ToolBridgeClient) -> None:
    """Waits until the host answers health checks with NOT_SERVING: it has begun shutting down."""

    async def refused() -> bool:
        return not await client.health_check()

    await wait_for(refused)


async def test_graceful_shutdown_finishes_the_call_in_flight() -> None:
    host = await spawn_host({"shutdown-grace-ms": 5000})
    client = await connect(host)
    in_flight = asyncio.create_task(client.execute_tool("slow", ms=1500, tag="py-shutdown"))
    await started(client, "py-shutdown")
    host.send_signal()
    await not_serving(client)
    with pytest.raises(ToolCommunicationError) as info:
        await client.execute_tool("add", 1, 1)
    assert info.value.code == grpc.StatusCode.UNAVAILABLE
    assert await in_flight == "done"
    assert await host.stop() == 0
    await client.close()


async def test_grace_period_end_cancels_calls_still_running() -> None:
    host = await spawn_host({"shutdown-grace-ms": 300})
    client = await connect(host)
    in_flight = asyncio.create_task(client.execute_tool("slow", ms=10_000, tag="py-grace"))
    await started(client, "py-grace")
    host.send_signal()
    with pytest.raises(ToolCommunicationError):
        await in_flight
    assert await host.stop() == 0
    await client.close()
