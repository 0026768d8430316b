"""The call path from Python, against the real host: output schemas (the float kind they
declare survives a JS tool), batch items without indexes, and a stream's idle timeout
versus its total budget."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from toolbridge import ErrorType, HostProcess, ToolBridgeClient, ToolCallError, ToolExecutionError
from toolbridge.core.values import encode_value_into
from toolbridge.v1 import toolbridge_pb2 as pb
from toolbridge.v1 import toolbridge_pb2_grpc as pb_grpc


def kinds(value: Any) -> Any:
    """The Python types of a decoded value as a tree, with the numbers: ``("float", 1.0)``."""
    if isinstance(value, dict):
        return {key: kinds(item) for key, item in value.items()}
    if isinstance(value, list):
        return [kinds(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    return (type(value).__name__, value)


MEASURE = {
    "ratio": ("float", 1.0),
    "huge": ("float", 1e300),
    "count": ("int", 3),
    "samples": [("float", 1.0), ("float", 2.5)],
    "byName": {"a": ("float", 2.0)},
    "pair": [("int", 4), ("float", 4.0)],
    "maybe": ("float", 7.0),
    "shapes": [{"kind": "circle", "radius": ("float", 2.0)}, {"kind": "grid", "cells": ("int", 9)}],
    "tree": {"value": ("float", 1.0), "children": [{"value": ("float", 2.0), "children": []}]},
    "untyped": ("int", 5),
}
READINGS = [{"i": ("int", 0), "x": ("float", 1.0)}, {"i": ("int", 1), "x": ("float", 1e300)}]


async def _drain(
    client: ToolBridgeClient, tool: str, kwargs: dict[str, Any], **options: Any
) -> tuple[list[Any], ToolCallError | None]:
    """The chunks a stream sent, and the error it ended with (None when it completed)."""
    chunks: list[Any] = []
    try:
        async for chunk in client.open_stream(tool, (), kwargs, **options):
            chunks.append(chunk)
    except ToolCallError as error:
        return chunks, error
    return chunks, None


async def test_the_spec_shows_the_output_schema(client: ToolBridgeClient) -> None:
    specs = {spec.name: spec for spec in await client.list_tools()}
    measure = specs["measure"].output_schema
    assert measure is not None
    assert measure["properties"]["ratio"] == {"type": "number"}
    assert measure["properties"]["count"]["type"] == "integer"
    readings = specs["readings"]
    assert readings.streaming
    assert readings.output_schema is not None
    assert readings.output_schema["required"] == ["i", "x"]
    assert specs["add"].output_schema is None
    assert (specs["ticks"].timeout_ms, specs["ticks"].idle_timeout_ms) == (60_000, 300)


async def test_an_output_schema_keeps_the_float_kind_in_calls_streams_and_batches(
    client: ToolBridgeClient,
) -> None:
    assert kinds(await client.execute_tool("measure")) == MEASURE
    assert [kinds(chunk) async for chunk in client.stream_tool("readings")] == READINGS
    results = await client.execute_batch([{"tool_id": "measure"}, {"tool_id": "readings"}])
    assert [kinds(result) for result in results] == [MEASURE, READINGS]


async def test_a_result_or_chunk_breaking_the_output_schema_names_the_path(client: ToolBridgeClient) -> None:
    with pytest.raises(ToolExecutionError) as result:
        await client.execute_tool("bad_output")
    assert result.value.type == ErrorType.TOOL_EXECUTION_ERROR
    assert result.value.details["path"] == "$.order.total"
    assert "does not match its output schema: $.order.total" in result.value.reason
    received, error = await _drain(client, "bad_chunk", {})
    assert isinstance(error, ToolExecutionError)
    assert (error.details["path"], error.details["chunk"]) == ("$.i", "1")
    assert received == [{"i": 0, "x": 0.5}]


def _item(a: int, index: int | None = None) -> pb.ToolCallItem:
    """An ``add(a, 1)`` item; ``index=None`` leaves the field absent."""
    item = pb.ToolCallItem(tool_id="add", index=index)
    encode_value_into(item.kwargs["a"], a)
    encode_value_into(item.kwargs["b"], 1)
    return item


async def test_batch_items_without_indexes_take_their_positions(
    client: ToolBridgeClient, host: HostProcess
) -> None:
    # The client sends no indexes; results still land in request order.
    assert await client.execute_batch([{"tool_id": "add", "args": [i, i]} for i in range(4)]) == [0, 2, 4, 6]
    async with grpc.aio.insecure_channel(host.target) as channel:
        stub = pb_grpc.ToolBridgeStub(channel)
        session_id = client.session_id or ""
        plain = await stub.BatchExecuteTools(
            pb.BatchToolCallRequest(session_id=session_id, items=[_item(1), _item(2)])
        )
        assert [(r.index, r.success) for r in plain.results] == [(0, True), (1, True)]
        # Given and absent indexes mix when every item's index (given, else position) is unique.
        mixed = await stub.BatchExecuteTools(
            pb.BatchToolCallRequest(
                session_id=session_id, items=[_item(5, index=7), _item(6), _item(7, index=0)]
            )
        )
        assert mixed.success
        assert [r.index for r in mixed.results] == [7, 1, 0]
        clash = await stub.BatchExecuteTools(
            pb.BatchToolCallRequest(session_id=session_id, items=[_item(1), _item(2, index=0)])
        )
        assert not clash.success
        assert clash.error.type == ErrorType.VALIDATION_ERROR
        assert dict(clash.error.details) == {"field": "items.index", "index": "0"}


async def test_a_stalled_stream_ends_at_its_idle_timeout(client: ToolBridgeClient) -> None:
    chunks, error = await _drain(client, "count", {"n": 3, "delay_ms": 30_000}, idle_timeout_ms=200)
    assert chunks == []
    assert isinstance(error, ToolCallError)
    assert error.type == ErrorType.TIMEOUT
    assert error.details == {"timeout": "idle", "timeout_ms": "200"}
    # The tool's own idle timeout applies when the call asks for none.
    chunks, error = await _drain(client, "ticks", {"n": 2, "delay_ms": 30_000})
    assert isinstance(error, ToolCallError)
    assert not isinstance(error, ToolExecutionError), "a timeout is not the tool's own exception"
    assert error.details == {"timeout": "idle", "timeout_ms": "300"}


async def test_a_steady_stream_outlives_its_idle_timeout_and_ends_at_its_total_budget(
    client: ToolBridgeClient,
) -> None:
    # A chunk every 5 ms never leaves the stream idle for 1 s; the 2.5 s budget ends it.
    chunks, error = await _drain(
        client, "count", {"n": 1_000_000, "delay_ms": 5}, idle_timeout_ms=1_000, timeout_ms=2_500
    )
    assert isinstance(error, ToolCallError)
    assert error.type == ErrorType.TIMEOUT
    assert error.details == {"timeout": "total", "timeout_ms": "2500"}
    assert len(chunks) > 1
