"""The clients' default timeout on every unary RPC, against the real host stopped with SIGSTOP.

A stopped host accepts connections (the kernel does) and answers nothing: without a deadline
a call would wait for ever, a new client's first call for gRPC's connect timeout. Each call
must fail with ``ToolCommunicationError`` and ``DEADLINE_EXCEEDED`` at the client's default
timeout; a batch without a timeout has no deadline and runs as long as its items do.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from toolbridge import (
    ErrorType,
    HostProcess,
    SessionContext,
    SyncToolBridgeClient,
    ToolBridgeClient,
    ToolCallError,
    ToolCommunicationError,
)
from toolbridge.core.values import encode_value
from toolbridge.v1 import toolbridge_pb2 as pb

from .conftest import spawn_host
from .test_call_stream import wait_for_event

DEFAULT_TIMEOUT_MS = 1000
#: Only a hang guard: a call that runs into it failed the test, whatever its time.
HANG_GUARD_S = 60.0


async def fails_at_the_default_timeout(what: str, call: Awaitable[Any]) -> None:
    with pytest.raises(ToolCommunicationError) as raised:
        await asyncio.wait_for(call, HANG_GUARD_S)
    assert raised.value.code == grpc.StatusCode.DEADLINE_EXCEEDED, (what, raised.value)
    assert "within 1 s (the client's default_timeout_ms)" in str(raised.value), what


async def blocking_fails_at_the_default_timeout(what: str, call: Callable[[], Any]) -> None:
    await fails_at_the_default_timeout(what, asyncio.to_thread(call))


@pytest.fixture
async def stoppable_host() -> Any:
    host = await spawn_host()
    try:
        yield host
    finally:
        host.send_signal(signal.SIGCONT)
        assert await host.stop() == 0, host.output()


async def test_a_stopped_host_fails_every_unary_rpc_of_the_asyncio_client_at_the_default_timeout(
    stoppable_host: HostProcess,
) -> None:
    host = stoppable_host
    async with ToolBridgeClient(host.target, default_timeout_ms=DEFAULT_TIMEOUT_MS) as client:
        await client.initialize_session()
        session = SessionContext(client, cache=False)
        await session.set_variable("plan", ["search"])
        host.send_signal(signal.SIGSTOP)
        try:
            await fails_at_the_default_timeout("ListTools", client.list_tools())
            await fails_at_the_default_timeout("SetSessionVariable", session.set_variable("plan", []))
            await fails_at_the_default_timeout("GetSessionVariable", session.get_variable("plan"))
            await fails_at_the_default_timeout("ListSessionVariables", session.list_variables())
            await fails_at_the_default_timeout("DeleteSessionVariable", session.delete_variable("plan"))
            await fails_at_the_default_timeout("GetSessionInfo", client.session_info())
            await fails_at_the_default_timeout("Heartbeat", client.heartbeat())
            await fails_at_the_default_timeout("GetMetrics", client.get_metrics())
            async with ToolBridgeClient(host.target, default_timeout_ms=DEFAULT_TIMEOUT_MS) as newcomer:
                await fails_at_the_default_timeout("InitializeSession", newcomer.initialize_session())
        finally:
            host.send_signal(signal.SIGCONT)
        # The host serves again. (The writes that failed may have been applied when it woke up:
        # their requests were in its socket; a deadline does not say whether a call ran.)
        assert "add" in {tool.name for tool in await client.list_tools()}
        await client.cleanup()


async def test_a_stopped_host_fails_every_unary_rpc_of_the_blocking_client_at_the_default_timeout(
    stoppable_host: HostProcess,
) -> None:
    host = stoppable_host
    with SyncToolBridgeClient(host.target, default_timeout_ms=DEFAULT_TIMEOUT_MS) as client:
        session_id = client.initialize_session().session_id
        transport = client.transport
        # The blocking client has no variable methods; its transport carries the RPCs.
        set_request = pb.SetVariableRequest(
            session_id=session_id, variable_name="plan", value=encode_value("search"), create_if_missing=True
        )
        get_request = pb.GetVariableRequest(session_id=session_id, variable_name="plan")
        assert transport.unary("SetSessionVariable", transport.stub.SetSessionVariable, set_request).success
        host.send_signal(signal.SIGSTOP)
        try:
            await blocking_fails_at_the_default_timeout("ListTools", client.list_tools)
            await blocking_fails_at_the_default_timeout(
                "SetSessionVariable",
                lambda: transport.unary("SetSessionVariable", transport.stub.SetSessionVariable, set_request),
            )
            await blocking_fails_at_the_default_timeout(
                "GetSessionVariable",
                lambda: transport.unary("GetSessionVariable", transport.stub.GetSessionVariable, get_request),
            )
            await blocking_fails_at_the_default_timeout("GetSessionInfo", client.session_info)
            await blocking_fails_at_the_default_timeout("Heartbeat", client.heartbeat)
            await blocking_fails_at_the_default_timeout("GetMetrics", client.get_metrics)
            with SyncToolBridgeClient(host.target, default_timeout_ms=DEFAULT_TIMEOUT_MS) as newcomer:
                await blocking_fails_at_the_default_timeout("InitializeSession", newcomer.initialize_session)
        finally:
            host.send_signal(signal.SIGCONT)
        assert "add" in {tool.name for tool in client.list_tools()}
        client.cleanup()


async def test_a_batch_without_a_timeout_outlives_the_default_timeout(
    stoppable_host: HostProcess, tmp_path: Path
) -> None:
    host = stoppable_host
    release = tmp_path / "release"
    item = {"tool_id": "wait_for_file", "kwargs": {"path": str(release), "tag": "py-batch"}}
    async with ToolBridgeClient(host.target, default_timeout_ms=DEFAULT_TIMEOUT_MS) as client:
        await client.initialize_session()
        with SyncToolBridgeClient(host.target, default_timeout_ms=DEFAULT_TIMEOUT_MS) as sync_client:
            sync_client.initialize_session(client.session_id or "")
            batch = asyncio.create_task(client.execute_batch([item]))
            sync_batch = asyncio.create_task(asyncio.to_thread(sync_client.execute_batch, [item]))
            await wait_for_event(client, "py-batch", "started", count=2)
            # A call sent after both batches started fails at the default timeout: once it has,
            # that much time has passed, and a batch bounded by it would have failed too.
            with pytest.raises(ToolCallError) as clock:
                await client.call_tool("slow", kwargs={"ms": 60_000, "tag": "py-clock"})
            assert clock.value.type == ErrorType.TIMEOUT
            release.touch()
            assert await asyncio.wait_for(batch, HANG_GUARD_S) == ["released"]
            assert await asyncio.wait_for(sync_batch, HANG_GUARD_S) == ["released"]
