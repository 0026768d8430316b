"""Batches and the retry policy from Python, against the real host."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import grpc
import pytest

from toolbridge import (
    DEFAULT_BACKOFF,
    BackoffPolicy,
    ErrorType,
    HostProcess,
    RetryEvent,
    SessionRecreated,
    SessionRecreatedError,
    ToolBridgeClient,
    ToolBridgeError,
    ToolCallError,
    ToolCommunicationError,
    ToolExecutionError,
    create_grpc_channel,
)
from toolbridge.features.retry import retry_delay

from .answer_cutter import AnswerCutter
from .conftest import spawn_host

FAST = BackoffPolicy(initial_ms=20, max_ms=100)
# Reconnect soon after the host comes back; gRPC's default reconnect backoff starts at 1 s.
FAST_RECONNECT = [("grpc.initial_reconnect_backoff_ms", 50), ("grpc.max_reconnect_backoff_ms", 200)]


async def test_batch_results_keep_request_order_when_items_finish_out_of_order(
    client: ToolBridgeClient,
) -> None:
    # c opens B, which releases b, which opens A, which releases a: they finish c, b, a.
    results = await client.execute_batch(
        [
            {"tool_id": "latch", "kwargs": {"tag": "a", "wait": "py-order-A"}},
            {"tool_id": "latch", "kwargs": {"tag": "b", "wait": "py-order-B", "open": "py-order-A"}},
            {"tool_id": "latch", "kwargs": {"tag": "c", "open": "py-order-B"}},
            {"tool_id": "add", "args": [40, 2]},
            {"tool_id": "fail", "kwargs": {"message": "boom"}},
        ]
    )
    a, b, c = results[:3]
    assert [a["tag"], b["tag"], c["tag"]] == ["a", "b", "c"]
    assert a["finished"] > b["finished"] > c["finished"]
    assert results[3] == 42
    failure = results[4]
    assert isinstance(failure, ToolExecutionError)
    assert failure.tool_name == "fail"
    assert failure.type == ErrorType.TOOL_EXECUTION_ERROR
    assert failure.reason == "boom"
    assert failure.details["index"] == 4


async def test_batch_stop_on_error_reports_the_rest_as_cancelled(client: ToolBridgeClient) -> None:
    results = await client.execute_batch(
        [
            {"tool_id": "add", "kwargs": {"a": 1, "b": 2}},
            {"tool_id": "add", "kwargs": {"a": 1}},
            {"tool_id": "flaky", "kwargs": {"key": "py-skip", "failures": 0}},
        ],
        parallel=False,
        stop_on_error=True,
    )
    assert len(results) == 3
    assert results[0] == 3
    assert type(results[1]) is ToolCallError
    assert results[1].type == ErrorType.VALIDATION_ERROR
    assert type(results[2]) is ToolCallError
    assert results[2].type == ErrorType.CANCELLED
    assert results[2].details["reason"] == "stop_on_error"
    assert await client.execute_tool("call_count", key="py-skip") == 0


async def test_batch_max_parallel_bounds_concurrency_inside_the_tool(client: ToolBridgeClient) -> None:
    items = [{"tool_id": "probe", "kwargs": {"tag": "py-mp", "until_active": 2}} for _ in range(6)]
    assert await client.execute_batch(items, max_parallel=2) == ["py-mp"] * 6
    assert await client.execute_tool("probe_max", tag="py-mp") == 2


async def test_batch_over_the_size_limit_is_refused_whole(client: ToolBridgeClient) -> None:
    items = [{"tool_id": "add", "args": [i, 0]} for i in range(101)]
    with pytest.raises(ToolBridgeError) as raised:
        await client.execute_batch(items)
    assert raised.value.type == ErrorType.VALIDATION_ERROR
    assert "maxBatchSize" in str(raised.value)
    assert await client.execute_batch(items[:100]) == list(range(100))
    assert await client.execute_batch([]) == []


def test_retry_delay_backs_off_and_waits_out_rate_limits() -> None:
    def transport(code: grpc.StatusCode) -> ToolCommunicationError:
        return ToolCommunicationError("t", code, "")

    policy = DEFAULT_BACKOFF
    for code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        assert [retry_delay(transport(code), n, policy) for n in range(3)] == [1_000, 2_000, 4_000]
    assert retry_delay(transport(grpc.StatusCode.INTERNAL), 0, policy) is None
    hinted = ToolCallError("t", ErrorType.RATE_LIMIT_EXCEEDED, "", {"retry_after_ms": "1500"})
    assert retry_delay(hinted, 0, policy) == 1_500
    bare = ToolCallError("t", ErrorType.RATE_LIMIT_EXCEEDED, "")
    assert [retry_delay(bare, n, policy) for n in range(2)] == [10_000, 20_000]
    assert retry_delay(ToolExecutionError("t", "it broke"), 0, policy) is None
    for error_type in (ErrorType.VALIDATION_ERROR, ErrorType.TIMEOUT):
        assert retry_delay(ToolCallError("t", error_type, ""), 0, policy) is None


async def test_retry_waits_the_hosts_retry_after(client: ToolBridgeClient) -> None:
    events: list[RetryEvent] = []
    result = await client.call_with_retry(
        "flaky",
        kwargs={"key": "py-rl", "failures": 2, "retry_after_ms": 30},
        # Without the hint the 60 s fallback would time the test out.
        backoff=BackoffPolicy(rate_limit_ms=60_000),
        on_retry=events.append,
    )
    assert result == 3
    assert [(e.attempt, e.delay_ms, e.error.type) for e in events] == [
        (1, 30, ErrorType.RATE_LIMIT_EXCEEDED),
        (2, 30, ErrorType.RATE_LIMIT_EXCEEDED),
    ]
    # max_attempts counts attempts, the first included.
    with pytest.raises(ToolCallError) as raised:
        await client.execute_with_retry("flaky", key="py-rl-2", failures=5, retry_after_ms=5, max_attempts=2)
    assert raised.value.type == ErrorType.RATE_LIMIT_EXCEEDED
    assert await client.execute_tool("call_count", key="py-rl-2") == 2
    # max_retries, the original guide's name for it, counts the same.
    with pytest.raises(ToolCallError):
        await client.execute_with_retry("flaky", key="py-rl-3", failures=5, retry_after_ms=5, max_retries=3)
    assert await client.execute_tool("call_count", key="py-rl-3") == 3
    with pytest.raises(TypeError, match="not both"):
        await client.execute_with_retry("add", 1, 2, max_attempts=2, max_retries=2)


async def test_no_retry_on_a_tool_error(client: ToolBridgeClient) -> None:
    events: list[RetryEvent] = []
    with pytest.raises(ToolExecutionError) as raised:
        await client.call_with_retry(
            "flaky",
            kwargs={"key": "py-logic", "failures": 1, "mode": "error"},
            on_retry=events.append,
        )
    assert raised.value.type == ErrorType.TOOL_EXECUTION_ERROR
    assert events == []
    assert await client.execute_tool("call_count", key="py-logic") == 1


async def test_retry_keeps_going_across_a_host_restart_on_the_same_port() -> None:
    host = await spawn_host({"port": 0})
    port = int(host.target.rsplit(":", 1)[1])
    channel = create_grpc_channel(host.target, options=FAST_RECONNECT)
    client = ToolBridgeClient(host.target, channel=channel)
    restarted: list[asyncio.Task[HostProcess]] = []
    try:
        session = await client.initialize_session("py-restart", {"owner": "py-retry"})
        assert await client.execute_with_retry("add", 1, 1) == 2
        assert await host.stop() == 0

        # Any tool is retried (a repeated call would be a replay), until the attempts run out.
        quiet: list[RetryEvent] = []
        with pytest.raises(ToolCommunicationError) as raised:
            await client.call_with_retry(
                "describe_args", kwargs={"name": "x"}, backoff=FAST, on_retry=quiet.append
            )
        assert raised.value.code == grpc.StatusCode.UNAVAILABLE
        assert [e.attempt for e in quiet] == [1, 2]

        events: list[RetryEvent] = []
        recreated: list[SessionRecreated] = []

        def restart_once(event: RetryEvent) -> None:
            events.append(event)
            # Bring the host back only once the client has seen it gone.
            if not restarted:
                restarted.append(asyncio.create_task(spawn_host({"port": port})))

        result = await client.call_with_retry(
            "add",
            args=[20, 22],
            max_attempts=100,
            backoff=FAST,
            on_retry=restart_once,
            on_session_recreated=recreated.append,
        )
        assert result == 42
        assert restarted, "the call never failed while the host was down"
        host = await restarted[0]
        first = events[0].error
        assert isinstance(first, ToolCommunicationError)
        assert first.code == grpc.StatusCode.UNAVAILABLE
        # The new host had no such session; the client re-created it under the same id, and said so.
        assert recreated == [SessionRecreated(session.session_id)]
        assert client.session_id == session.session_id
        assert (await client.session_info()).metadata == {"owner": "py-retry"}
    finally:
        await channel.close(None)
        if restarted:
            host = await restarted[0]
        await host.stop()


async def test_a_cold_client_recovers_after_a_restart_and_is_told_the_session_came_back_empty() -> None:
    """A client that never listed tools: its first retried call after the restart finds the session gone."""
    host = await spawn_host({"port": 0})
    port = int(host.target.rsplit(":", 1)[1])
    warm = ToolBridgeClient(host.target)
    session = await warm.initialize_session("py-cold", {"owner": "py-cold"})
    await warm.close()
    assert await host.stop() == 0
    host = await spawn_host({"port": port})
    channel = create_grpc_channel(host.target, options=FAST_RECONNECT)
    try:
        # Attached by id alone, as a new process would be: no spec lookup, no earlier failure.
        cold = ToolBridgeClient(host.target, channel=channel)
        cold.session_id = session.session_id
        with pytest.raises(SessionRecreatedError) as raised:
            await cold.call_with_retry("add", args=[1, 2], backoff=FAST)
        assert raised.value.type == ErrorType.SESSION_NOT_FOUND
        assert raised.value.details["recreated"] == "true"
        assert "re-created empty" in str(raised.value)
        # The session works again (empty); the next call goes through.
        assert await cold.call_with_retry("add", args=[1, 2], backoff=FAST) == 3
        assert await cold.session_info()

        # With a handler the caller is told and the call goes on.
        await cold.cleanup()
        cold.session_id = session.session_id
        told: list[SessionRecreated] = []
        assert await cold.call_with_retry("add", args=[2, 2], on_session_recreated=told.append) == 4
        assert told == [SessionRecreated(session.session_id)]
    finally:
        await channel.close(None)
        await host.stop()


async def test_a_call_whose_answer_was_lost_is_retried_and_its_tool_runs_once(host: HostProcess) -> None:
    """The call ran and the host answered, but the connection dropped before the client read it.

    The retry carries the same request id: the host replays the recorded answer instead of
    running the tool with the side effect again.
    """
    proxy = await AnswerCutter(host.target).start()
    channel = create_grpc_channel(proxy.target, options=FAST_RECONNECT)
    key = f"py-once-{uuid.uuid4().hex}"
    try:
        client = ToolBridgeClient(proxy.target, channel=channel)
        await client.initialize_session()
        lost = proxy.lose_next_answer()
        retries: list[RetryEvent] = []
        result = await client.call_with_retry(
            "bump", kwargs={"key": key}, request_id=f"req-{key}", backoff=FAST, on_retry=retries.append
        )
        await lost
        assert proxy.cuts > 0
        assert [(event.attempt, type(event.error)) for event in retries] == [(1, ToolCommunicationError)]
        assert result == {"count": 1, "node": "local"}
        assert await client.execute_tool("bump_starts", key=key) == 1
        assert await client.execute_tool("bumps", key=key) == 1
        await client.cleanup()
        await client.close()
    finally:
        await channel.close(None)
        await proxy.close()


def test_in_band_unavailable_is_retried_unless_the_host_says_it_is_not() -> None:
    policy = BackoffPolicy(initial_ms=1_000)
    worker_died = ToolCallError("t", ErrorType.UNAVAILABLE, "worker died", {"retriable": "true"})
    redis_down = ToolBridgeError("Redis is unreachable", ErrorType.UNAVAILABLE, {"store": "redis"})
    node_gone = ToolCallError("t", ErrorType.UNAVAILABLE, "node gone", {"retriable": "false"})
    assert retry_delay(worker_died, 1, policy) == 2_000
    assert retry_delay(redis_down, 0, policy) == 1_000
    assert retry_delay(node_gone, 0, policy) is None


def test_batch_results_are_placed_by_index_and_a_malformed_answer_is_named() -> None:
    # The real host always answers well; this checks the client's guard against one that does not.
    from toolbridge.features.batch import batch_results
    from toolbridge.v1 import toolbridge_pb2 as pb

    requests: list[dict[str, Any]] = [{"tool_id": f"t{i}"} for i in range(4)]
    response = pb.BatchToolCallResponse()
    for index in (2, 0):
        item = response.results.add(index=index, success=True)
        item.result.int_value = index * 10
    failed = response.results.add(index=3, success=False)
    failed.error.type = "Timeout"
    failed.error.message = "too slow"
    results = batch_results(requests, response)
    assert results[0] == 0
    assert results[2] == 20
    assert type(results[1]) is ToolCallError
    assert (results[1].tool_name, results[1].type, results[1].details) == (
        "t1",
        "InternalError",
        {"index": 1},
    )
    assert "no result for batch item 1" in str(results[1])
    assert type(results[3]) is ToolCallError
    assert (results[3].type, results[3].details) == ("Timeout", {"index": 3})

    response.results.add(index=0, success=True)
    with pytest.raises(ToolBridgeError, match="result for index 0") as raised:
        batch_results(requests, response)
    assert raised.value.type == ErrorType.INTERNAL_ERROR
    beyond = pb.BatchToolCallResponse()
    beyond.results.add(index=4, success=True)
    with pytest.raises(ToolBridgeError, match="batch of 4 items with a result for index 4"):
        batch_results(requests, beyond)
