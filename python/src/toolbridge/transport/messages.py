"""The request messages of tool calls, and the small conversions every transport shares (no I/O)."""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from toolbridge.core.config import TOOL_BRIDGE_CONFIG
from toolbridge.core.errors import InvalidValueError
from toolbridge.core.values import decode_value, encode_value
from toolbridge.transport.error_mapping import error_from_info, succeeded
from toolbridge.v1 import toolbridge_pb2 as pb
from toolbridge.v1 import values_pb2 as pb_values

_PROCESS_ID = uuid.uuid4().hex[:16]
_counter = itertools.count(1)


def _draw_process_id() -> None:
    # A forked child must not repeat its parent's ids.
    global _PROCESS_ID, _counter
    _PROCESS_ID, _counter = uuid.uuid4().hex[:16], itertools.count(1)


os.register_at_fork(after_in_child=_draw_process_id)


def new_request_id() -> str:
    """A fresh request id, unique across processes and hosts; the host's logs carry it.

    A random part drawn once per process and a counter: a call needs no random bytes of its own.
    """
    return f"req_{_PROCESS_ID}_{next(_counter):x}"


def default_timeout(timeout_ms: int | None) -> int:
    """A client's default call timeout: ``timeout_ms``, else ``TOOL_BRIDGE_CONFIG["default_timeout_ms"]``."""
    chosen = int(TOOL_BRIDGE_CONFIG["default_timeout_ms"]) if timeout_ms is None else timeout_ms
    if chosen <= 0:
        raise ValueError(f"default_timeout_ms must be a positive number of milliseconds, got {chosen}")
    return chosen


def deadline_ms(timeout_ms: int | None) -> int | None:
    """The deadline of a call the host stops after ``timeout_ms`` (None: no deadline).

    The host enforces ``timeout_ms`` and answers with a ``Timeout`` error; the deadline comes a
    little later (``deadline_slack_ms``), as a backstop for a host that never answers.
    """
    if not timeout_ms:
        return None
    return timeout_ms + int(TOOL_BRIDGE_CONFIG["deadline_slack_ms"])


def deadline_s(timeout_ms: int | None) -> float | None:
    """``deadline_ms`` in seconds, the unit of gRPC's ``timeout=`` and of the clocks that wait."""
    deadline = deadline_ms(timeout_ms)
    return None if deadline is None else deadline / 1000


def encode_args(args: Iterable[Any]) -> list[pb_values.Value]:
    """Positional arguments as Values; ``InvalidValueError`` names the argument that cannot be sent."""
    encoded = []
    for index, arg in enumerate(args):
        try:
            encoded.append(encode_value(arg))
        except InvalidValueError as error:
            raise InvalidValueError(error.reason, f"argument {index}: {error.message}", error.path) from None
    return encoded


def encode_kwargs(kwargs: Mapping[str, Any]) -> dict[str, pb_values.Value]:
    """Keyword arguments as Values; ``InvalidValueError`` names the argument that cannot be sent."""
    encoded = {}
    for key, value in kwargs.items():
        try:
            encoded[key] = encode_value(value)
        except InvalidValueError as error:
            raise InvalidValueError(error.reason, f"argument '{key}': {error.message}", error.path) from None
    return encoded


def tool_call_request(
    session_id: str,
    tool_id: str,
    args: Iterable[Any],
    kwargs: Mapping[str, Any],
    *,
    timeout_ms: int | None = None,
    request_id: str | None = None,
) -> pb.ToolCallRequest:
    """An ExecuteTool request. ``request_id`` is the call's idempotency key, not a correlation id: the
    host answers the same call repeated under it with the first one's outcome, and refuses another
    call under it with ``RequestIdReused`` (docs/replay.md). Without one the host names the call and
    records nothing.
    """
    return pb.ToolCallRequest(
        session_id=session_id,
        tool_id=tool_id,
        args=encode_args(args),
        kwargs=encode_kwargs(kwargs),
        request_id=request_id or "",
        timeout_ms=timeout_ms or 0,
    )


def tool_stream_request(
    session_id: str,
    tool_id: str,
    args: Iterable[Any],
    kwargs: Mapping[str, Any],
    *,
    timeout_ms: int | None = None,
    idle_timeout_ms: int | None = None,
    request_id: str | None = None,
) -> pb.ToolStreamRequest:
    """A StreamTool request with a fresh stream id; ``timeout_ms`` is the stream's total budget."""
    return pb.ToolStreamRequest(
        session_id=session_id,
        tool_id=tool_id,
        args=encode_args(args),
        kwargs=encode_kwargs(kwargs),
        stream_id=f"stream_{uuid.uuid4().hex}",
        request_id=request_id or "",
        timeout_ms=timeout_ms or 0,
        idle_timeout_ms=idle_timeout_ms or 0,
    )


def tool_result(request: pb.ToolCallRequest, response: pb.ToolCallResponse) -> Any:
    """The decoded result of a tool call; a failed call raises its ``ToolCallError``."""
    return decode_value(succeeded(response, tool_name=request.tool_id, session_id=request.session_id).result)


def chunk_content(chunk: pb.ToolStreamChunk, request: pb.ToolStreamRequest) -> tuple[str | None, Any]:
    """What a StreamTool chunk says: ``("data", value)``, ``("complete", None)``, or ``(None, None)``
    for a chunk of no kind known here; an error chunk raises its ``ToolCallError``."""
    kind = chunk.WhichOneof("content")
    if kind == "data":
        return kind, decode_value(chunk.data)
    if kind == "error":
        raise error_from_info(chunk.error, tool_name=request.tool_id, session_id=request.session_id)
    return kind, None
