"""The multiplexed call stream (Calls) from both Python clients, against the real host CLI.

Many calls share one HTTP/2 stream; each must behave exactly as an ExecuteTool call would:
same results, same errors, its own timeout and cancellation, and a host shutdown handled
the same way.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import socket
from pathlib import Path
from typing import Any

import grpc
import pytest

from toolbridge import (
    ErrorType,
    HostProcess,
    SyncToolBridgeClient,
    ToolBridgeClient,
    ToolCallError,
    ToolCommunicationError,
    ToolExecutionError,
)
from toolbridge.core.values import encode_value
from toolbridge.transport import tool_call_request
from toolbridge.transport.h2_calls import CallStreamConnection
from toolbridge.v1 import toolbridge_pb2 as pb
from toolbridge.v1 import values_pb2 as pb_values
from toolbridge.v1.toolbridge_pb2_grpc import ToolBridgeServicer, add_ToolBridgeServicer_to_server

from .conftest import REPO_ROOT, spawn_host

VECTORS = json.loads((REPO_ROOT / "testdata/values/vectors.json").read_text(encoding="utf-8"))


async def events(client: ToolBridgeClient, tag: str) -> list[tuple[str, str]]:
    """What the test tools recorded for ``tag``: (event, detail) pairs in order."""
    return [(e["event"], e["detail"]) for e in await client.execute_tool("events", tag=tag)]


async def wait_for_event(client: ToolBridgeClient, tag: str, event: str, count: int = 1) -> None:
    for _ in range(400):
        if sum(1 for seen, _ in await events(client, tag) if seen == event) >= count:
            return
        await asyncio.sleep(0.025)
    pytest.fail(f"{tag} never recorded {count} x {event}: {await events(client, tag)}")


async def test_tool_calls_share_one_stream_and_complete_out_of_order(client: ToolBridgeClient) -> None:
    assert client.transport.calls is not None
    durations = [400, 300, 200, 100, 0]
    finished: list[int] = []

    async def call(ms: int) -> str:
        result: str = await client.execute_tool("slow", ms=ms, tag=f"py-ooo-{ms}")
        finished.append(ms)
        return result

    results = await asyncio.gather(*(call(ms) for ms in durations))
    assert results == ["done"] * len(durations)
    # Started in one order, answered as each finished: the shortest first.
    assert finished == sorted(durations)
    assert client.transport.calls is not None
    assert client.transport.calls.connected


async def test_many_concurrent_calls_each_get_their_own_answer(client: ToolBridgeClient) -> None:
    results = await asyncio.gather(*(client.execute_tool("add", i, 1000) for i in range(300)))
    assert results == [i + 1000 for i in range(300)]


async def test_a_failing_call_does_not_disturb_the_others(client: ToolBridgeClient) -> None:
    outcomes = await asyncio.gather(
        client.execute_tool("slow", ms=200, tag="py-undisturbed"),
        client.execute_tool("fail", message="boom"),
        client.execute_tool("add", a=1, b="two"),
        client.execute_tool("no_such_tool"),
        client.execute_tool("add", 2, 3),
        return_exceptions=True,
    )
    slow, failed, invalid, missing, added = outcomes
    assert slow == "done"
    assert isinstance(failed, ToolExecutionError)
    assert str(failed.details["exception"]) == "RangeError"
    assert isinstance(invalid, ToolCallError)
    assert invalid.type == ErrorType.VALIDATION_ERROR
    assert invalid.details["field"] == "b"
    assert isinstance(missing, ToolCallError)
    assert missing.type == ErrorType.TOOL_NOT_FOUND
    assert added == 5
    assert await client.execute_tool("add", 1, 1) == 2


async def test_a_call_repeated_under_its_request_id_on_the_stream_runs_the_tool_once(
    client: ToolBridgeClient, host: HostProcess
) -> None:
    assert client.transport.calls is not None
    tag = "py-stream-replayed"
    first = await client.call_tool("slow", kwargs={"ms": 0, "tag": tag}, request_id="py-replayed")
    again = await client.call_tool("slow", kwargs={"ms": 0, "tag": tag}, request_id="py-replayed")
    with SyncToolBridgeClient(host.target) as sync:
        sync.initialize_session(client.require_session())
        from_sync = sync.call_tool("slow", kwargs={"ms": 0, "tag": tag}, request_id="py-replayed")
    assert first == again == from_sync == "done"
    # Every repeat was answered from the record of the first call: the tool started once.
    assert [event for event, _ in await events(client, tag)].count("started") == 1


async def test_the_host_times_out_a_call_and_aborts_its_tool(client: ToolBridgeClient) -> None:
    with pytest.raises(ToolCallError) as raised:
        await client.call_tool("slow", kwargs={"ms": 10_000, "tag": "py-stream-timeout"}, timeout_ms=150)
    assert raised.value.type == ErrorType.TIMEOUT
    await wait_for_event(client, "py-stream-timeout", "aborted")
    assert ("aborted", "Timeout") in await events(client, "py-stream-timeout")


async def test_cancelling_the_caller_cancels_the_call_on_the_host(client: ToolBridgeClient) -> None:
    call = asyncio.create_task(client.execute_tool("slow", ms=10_000, tag="py-stream-cancel"))
    await wait_for_event(client, "py-stream-cancel", "started")
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await wait_for_event(client, "py-stream-cancel", "aborted")
    assert ("aborted", "Cancelled") in await events(client, "py-stream-cancel")
    # The stream goes on serving calls.
    assert await client.execute_tool("add", 2, 2) == 4


@pytest.mark.parametrize("vector", VECTORS["valid"], ids=lambda v: str(v["name"]))
async def test_the_stream_answers_every_value_vector_as_execute_tool_does(
    client: ToolBridgeClient, vector: dict[str, Any]
) -> None:
    value = pb_values.Value.FromString(bytes.fromhex(vector["hex"]))
    request = tool_call_request(
        client.require_session(), "echo", (), {}, timeout_ms=5000, request_id=f"vector-{vector['name']}"
    )
    request.kwargs["value"].CopyFrom(value)
    calls = client.transport.calls
    assert calls is not None
    streamed = await calls.call(request.SerializeToString(), 10.0)
    request.request_id += "-unary"
    unary = await client.transport.stub.ExecuteTool(request, timeout=10.0)
    assert streamed.success == unary.success
    assert streamed.error == unary.error
    assert streamed.result.SerializeToString() == unary.result.SerializeToString()
    assert streamed.request_id + "-unary" == unary.request_id


async def test_a_large_request_goes_through_execute_tool_and_small_ones_keep_the_stream(
    client: ToolBridgeClient,
) -> None:
    big = "x" * (1024 * 1024)
    results = await asyncio.gather(
        client.execute_tool("echo", value=big), *(client.execute_tool("add", i, i) for i in range(20))
    )
    assert results[0] == big
    assert results[1:] == [2 * i for i in range(20)]
    assert client.transport.calls is not None
    assert client.transport.calls.connected


async def test_a_reader_that_stops_reading_stops_the_host_taking_calls() -> None:
    # The raw stream over a socket this test reads only when it wants to, with a 256 KiB window:
    # once four 64 KiB answers are unread, HTTP/2 flow control stops the host, which then
    # reads no more call frames.
    host = await spawn_host({"max-calls-per-stream": 4})
    try:
        async with ToolBridgeClient(host.target, multiplex=False) as observer:
            session = (await observer.initialize_session()).session_id

            async def ran() -> int:
                tool = (await observer.get_metrics()).tools.get("bytes")
                return tool.calls if tool is not None else 0

            loop = asyncio.get_running_loop()
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.setblocking(False)
            await loop.sock_connect(sock, host.target.removeprefix("unix:"))
            wire = CallStreamConnection("localhost", max_message_bytes=1 << 20, receive_window=256 * 1024)
            total = 300
            for i in range(total):
                call = tool_call_request(session, "bytes", (), {"size": 65_536}, request_id=f"r{i}")
                wire.send_call(i + 1, call.SerializeToString())
            await loop.sock_sendall(sock, wire.data_to_send())
            # Wait until the count of calls run stops moving (bounded), then judge the count.
            last, same = await ran(), 0
            for _ in range(300):
                if same >= 5:
                    break
                await asyncio.sleep(0.1)
                now = await ran()
                same, last = (same + 1, last) if now == last else (0, now)
            else:
                pytest.fail(f"the count of calls run never stopped moving: {last}")
            assert last < 100, f"{last} of {total} calls ran while their answers were not read"
            answered: list[pb.CallAnswer] = []
            while len(answered) < total:
                answered += wire.receive(await loop.sock_recv(sock, 1 << 20))
                assert wire.ended is None
                await loop.sock_sendall(sock, wire.data_to_send())
            sock.close()
            assert all(answer.response.success for answer in answered)
            assert sorted(a.call_id for a in answered) == list(range(1, total + 1))
            assert all(a.response.request_id == f"r{a.call_id - 1}" for a in answered)
            assert await ran() == total
    finally:
        await host.stop()


async def test_host_shutdown_lets_calls_in_flight_finish_and_refuses_new_ones() -> None:
    host = await spawn_host({"shutdown-grace-ms": 5000})
    async with ToolBridgeClient(host.target) as client:
        await client.initialize_session()
        in_flight = [
            asyncio.create_task(client.execute_tool("slow", ms=800, tag=f"py-drain-{i}")) for i in range(3)
        ]
        await wait_for_event(client, "py-drain-2", "started")
        host.send_signal()
        # Shutting down: the host answers health checks with NOT_SERVING from the signal on.
        for _ in range(400):
            if not await client.health_check():
                break
            await asyncio.sleep(0.025)
        else:
            pytest.fail("the host never began shutting down")
        with pytest.raises(ToolCommunicationError) as refused:
            await client.execute_tool("add", 1, 1)
        assert refused.value.code == grpc.StatusCode.UNAVAILABLE
        assert "shutting down" in str(refused.value)
        assert await asyncio.gather(*in_flight) == ["done"] * 3
    assert await host.stop() == 0


async def test_calls_still_running_at_the_end_of_the_grace_period_fail_with_a_clear_error() -> None:
    host = await spawn_host({"shutdown-grace-ms": 300})
    async with ToolBridgeClient(host.target) as client:
        await client.initialize_session()
        in_flight = asyncio.create_task(client.execute_tool("slow", ms=20_000, tag="py-grace-over"))
        await wait_for_event(client, "py-grace-over", "started")
        host.send_signal()
        with pytest.raises(ToolCommunicationError) as failed:
            await in_flight
        assert failed.value.code == grpc.StatusCode.UNAVAILABLE
        assert "grace period" in str(failed.value)
    assert await host.stop() == 0


async def test_a_hung_host_fails_calls_at_the_default_timeout() -> None:
    host = await spawn_host()
    client = ToolBridgeClient(host.target, default_timeout_ms=300)
    sync_client = SyncToolBridgeClient(host.target, default_timeout_ms=300)
    try:
        await client.initialize_session()
        sync_client.initialize_session(client.session_id or "")
        assert await client.execute_tool("add", 1, 2) == 3
        assert sync_client.execute_tool("add", 1, 2) == 3
        host.send_signal(signal.SIGSTOP)
        with pytest.raises(ToolCommunicationError) as raised:
            await client.execute_tool("add", 1, 2)
        assert raised.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        with pytest.raises(ToolCommunicationError) as raised_sync:
            sync_client.execute_tool("add", 1, 2)
        assert raised_sync.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        host.send_signal(signal.SIGCONT)
        # The host answers again (the cancelled calls were answered and dropped), on the same stream.
        assert await client.execute_tool("add", 2, 2) == 4
        assert sync_client.execute_tool("add", 2, 2) == 4
    finally:
        host.send_signal(signal.SIGCONT)
        await client.close()
        sync_client.close()
        await host.stop()


async def test_a_unix_socket_host_serves_both_clients(host: HostProcess) -> None:
    # The launcher starts hosts on a Unix domain socket of their own.
    assert host.target.startswith("unix:")
    assert await asyncio.to_thread(Path(host.target.removeprefix("unix:")).is_socket)
    async with ToolBridgeClient(host.target) as client:
        await client.initialize_session()
        assert await client.execute_tool("add", 1, 2) == 3
        assert client.transport.calls is not None
        assert client.transport.calls.connected
        with SyncToolBridgeClient(host.target) as sync_client:
            sync_client.initialize_session(client.session_id or "")
            assert sync_client.execute_tool("add", 3, 4) == 7
            assert sync_client.transport.calls is not None
            assert sync_client.transport.calls.connected


async def test_a_tcp_host_serves_both_clients_on_the_stream() -> None:
    host = await spawn_host({"port": 0})
    try:
        assert not host.target.startswith("unix:")
        async with ToolBridgeClient(host.target) as client:
            await client.initialize_session()
            assert await asyncio.gather(*(client.execute_tool("add", i, 1) for i in range(10))) == [
                i + 1 for i in range(10)
            ]
            with SyncToolBridgeClient(host.target) as sync_client:
                sync_client.initialize_session(client.session_id or "")
                assert sync_client.execute_tool("add", 3, 4) == 7
                assert sync_client.transport.calls is not None
                assert sync_client.transport.calls.connected
    finally:
        await host.stop()


async def test_the_stream_carries_the_token_and_its_calls_are_the_principal_s(tmp_path: Path) -> None:
    token = secrets.token_urlsafe(24)
    tokens = tmp_path / "tokens"
    await asyncio.to_thread(tokens.write_text, f"{token} alice\n")
    host = await spawn_host({"auth-tokens-file": str(tokens)})
    try:
        async with ToolBridgeClient(host.target, token=token) as client:
            await client.initialize_session()
            assert await client.execute_tool("add", 1, 2) == 3
            assert client.transport.calls is not None
            assert client.transport.calls.connected
            assert (await client.session_info()).owner == "alice"
            with SyncToolBridgeClient(host.target, token=token) as sync_client:
                sync_client.initialize_session(client.session_id or "")
                assert sync_client.execute_tool("add", 3, 4) == 7
                assert sync_client.transport.calls is not None
                assert sync_client.transport.calls.connected
            # A stream opened with a wrong token is refused as a whole, as any RPC would be.
            async with ToolBridgeClient(host.target, token="not-" + token) as intruder:
                intruder.session_id = client.session_id
                with pytest.raises(ToolCommunicationError) as raised:
                    await intruder.execute_tool("add", 1, 2)
                assert raised.value.code == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await host.stop()


class _OnlyExecuteTool(ToolBridgeServicer):
    """A gRPC server of the contract without Calls (as an older host): everything else is UNIMPLEMENTED."""

    async def InitializeSession(self, request: Any, context: Any) -> pb.InitializeSessionResponse:
        return pb.InitializeSessionResponse(success=True, session_id="old-host", created=True)

    async def ExecuteTool(self, request: Any, context: Any) -> pb.ToolCallResponse:
        return pb.ToolCallResponse(success=True, result=encode_value("unary"), request_id=request.request_id)


async def test_a_host_without_the_call_stream_gets_every_call_as_execute_tool(tmp_path: Path) -> None:
    server = grpc.aio.server()
    # The stubs declare every RPC abstract; the base class answers those left out UNIMPLEMENTED.
    add_ToolBridgeServicer_to_server(_OnlyExecuteTool(), server)  # type: ignore[abstract]
    target = f"unix:{tmp_path}/old.sock"
    server.add_insecure_port(target)
    await server.start()
    try:
        async with ToolBridgeClient(target) as client:
            await client.initialize_session()
            assert await client.execute_tool("anything") == "unary"
            assert client.transport.calls is None
            assert await client.execute_tool("anything") == "unary"
        sync_client = SyncToolBridgeClient(target)
        try:
            await asyncio.to_thread(sync_client.initialize_session)
            assert await asyncio.to_thread(sync_client.execute_tool, "anything") == "unary"
            assert sync_client.transport.calls is None
        finally:
            sync_client.close()
    finally:
        await server.stop(None)
