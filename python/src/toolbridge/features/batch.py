"""BatchExecuteTools from Python: many tool calls in one round trip (``client.execute_batch``).

results = await client.execute_batch([
    {"tool_id": "add", "kwargs": {"a": 1, "b": 2}},
    {"tool_id": "search", "args": ["grpc"], "timeout_ms": 500},
])
for result in results:
    if isinstance(result, ToolCallError): ...
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from toolbridge.core.errors import (
    ErrorType,
    InvalidValueError,
    ToolBridgeError,
    ToolCallError,
    tool_call_error,
)
from toolbridge.core.values import decode_value, encode_value_into
from toolbridge.transport import AioTransport, deadline_ms, error_details
from toolbridge.transport.blocking import SyncTransport
from toolbridge.v1 import toolbridge_pb2 as pb
from toolbridge.v1 import values_pb2 as pb_values

BatchRequest = Mapping[str, Any]
"""One item: ``{"tool_id": str, "args": [...], "kwargs": {...}, "timeout_ms": int}``; tool_id is required."""


async def execute_batch(
    transport: AioTransport,
    session_id: str,
    batch_requests: Sequence[BatchRequest],
    *,
    parallel: bool = True,
    stop_on_error: bool = False,
    max_parallel: int = 0,
    timeout_ms: int | None = None,
    request_id: str | None = None,
) -> list[Any]:
    """Runs the calls in session ``session_id`` and returns their results in request order.

    A failed item is a ``ToolCallError`` instance in its place (not raised), with
    ``details["index"]``; with ``stop_on_error`` the items the host never started are
    ``Cancelled`` errors. ``max_parallel`` 0 uses the host's ``batchMaxParallel`` (10 by
    default). ``timeout_ms`` is the timeout of each item that sets none and, plus the
    usual slack, the deadline of the whole batch. Raises only when the batch as a whole
    is refused (unknown session: ``SessionError``; more items than the host's
    ``maxBatchSize``: ``ToolBridgeError`` with ``ValidationError``) or the transport fails.
    Without ``timeout_ms`` the batch has no deadline, not even the client's default timeout:
    its items may legitimately run long (each is bounded by the tool's own timeout on the host).
    Sent again under the same ``request_id``, the items that completed are answered with
    their recorded outcomes instead of running again; an item with another tool or other
    arguments than the one recorded under its id is a ``RequestIdReused`` error (docs/replay.md).
    """
    request = batch_request(
        session_id,
        batch_requests,
        parallel=parallel,
        stop_on_error=stop_on_error,
        max_parallel=max_parallel,
        timeout_ms=timeout_ms,
        request_id=request_id,
    )
    response = await transport.checked(
        "BatchExecuteTools",
        transport.stub.BatchExecuteTools,
        request,
        timeout_ms=deadline_ms(timeout_ms),
        default_deadline=False,
        session_id=session_id,
    )
    return batch_results(batch_requests, response)


def execute_batch_blocking(
    transport: SyncTransport,
    session_id: str,
    batch_requests: Sequence[BatchRequest],
    *,
    parallel: bool = True,
    stop_on_error: bool = False,
    max_parallel: int = 0,
    timeout_ms: int | None = None,
    request_id: str | None = None,
) -> list[Any]:
    """``execute_batch`` over the blocking transport."""
    request = batch_request(
        session_id,
        batch_requests,
        parallel=parallel,
        stop_on_error=stop_on_error,
        max_parallel=max_parallel,
        timeout_ms=timeout_ms,
        request_id=request_id,
    )
    response = transport.checked(
        "BatchExecuteTools",
        transport.stub.BatchExecuteTools,
        request,
        timeout_ms=deadline_ms(timeout_ms),
        default_deadline=False,
        session_id=session_id,
    )
    return batch_results(batch_requests, response)


def batch_request(
    session_id: str,
    batch_requests: Sequence[BatchRequest],
    *,
    parallel: bool = True,
    stop_on_error: bool = False,
    max_parallel: int = 0,
    timeout_ms: int | None = None,
    request_id: str | None = None,
) -> pb.BatchToolCallRequest:
    """The BatchExecuteTools request of ``execute_batch`` (no I/O)."""
    request = pb.BatchToolCallRequest(
        session_id=session_id,
        batch_id=f"batch_{uuid.uuid4().hex[:8]}",
        config=pb.BatchConfig(parallel=parallel, stop_on_error=stop_on_error, max_parallel=max_parallel),
        # A batch's request id is its items' idempotency keys (<id>/<index>); none: nothing is recorded.
        request_id=request_id or "",
    )
    # Items are built in place in the request: constructing each and copying it in cost 3x more.
    # No index is sent: the host takes an item's position as its index.
    for index, item in enumerate(batch_requests):
        _encode_item(request.items.add(), index, item, timeout_ms)
    return request


def _encode_item(
    message: pb.ToolCallItem, index: int, item: BatchRequest, default_timeout_ms: int | None
) -> None:
    tool_id = item.get("tool_id")
    if not isinstance(tool_id, str):
        raise TypeError(f"batch item {index}: 'tool_id' must be a string, got {tool_id!r}")
    message.tool_id = tool_id
    for i, arg in enumerate(item.get("args", ())):
        _encode(index, str(i), message.args.add(), arg)
    for key, value in item.get("kwargs", {}).items():
        _encode(index, key, message.kwargs[key], value)
    message.timeout_ms = int(item.get("timeout_ms") or default_timeout_ms or 0)


def _encode(index: int, name: str, target: pb_values.Value, value: Any) -> None:
    try:
        encode_value_into(target, value)
    except InvalidValueError as error:
        raise InvalidValueError(
            error.reason, f"batch item {index}, argument '{name}': {error.message}", error.path
        ) from None


def batch_results(batch_requests: Sequence[BatchRequest], response: pb.BatchToolCallResponse) -> list[Any]:
    """The results of ``execute_batch`` from the host's response, in request order."""
    # Each result lands at its index, in whatever order the host sent them; _MISSING marks a hole.
    count = len(batch_requests)
    results: list[Any] = [_MISSING] * count
    for item in response.results:
        index = item.index
        if index >= count or results[index] is not _MISSING:
            raise ToolBridgeError(
                f"the host answered a batch of {count} items with a result for index {index}",
                ErrorType.INTERNAL_ERROR,
            )
        if item.success:
            results[index] = decode_value(item.result)
        else:
            results[index] = tool_call_error(
                str(batch_requests[index]["tool_id"]),
                item.error.type or ErrorType.INTERNAL_ERROR,
                item.error.message,
                {**error_details(item.error), "index": index},
            )
    for index, result in enumerate(results):
        if result is _MISSING:
            results[index] = ToolCallError(
                str(batch_requests[index]["tool_id"]),
                ErrorType.INTERNAL_ERROR,
                f"the host sent no result for batch item {index}",
                {"index": index},
            )
    return results


_MISSING = object()
