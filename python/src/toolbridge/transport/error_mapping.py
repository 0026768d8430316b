"""Failures as the client's error classes (docs/errors.md): in-band ``ErrorInfo`` and failed RPCs."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

import grpc

from toolbridge.core.config import TOOL_BRIDGE_CONFIG
from toolbridge.core.errors import (
    SESSION_ERROR_TYPES,
    ErrorType,
    SessionError,
    ToolBridgeError,
    ToolCommunicationError,
    tool_call_error,
)
from toolbridge.transport.h2_calls import CallStreamEnded
from toolbridge.v1 import toolbridge_pb2 as pb


class RpcFailure(Protocol):
    """A failed RPC as grpcio reports it, blocking or asyncio (``grpc.aio.AioRpcError``)."""

    def code(self) -> grpc.StatusCode: ...

    def details(self) -> str | None: ...


class Answer(Protocol):
    """A response that reports a domain failure in-band: ``success`` false and an ``error``."""

    @property
    def success(self) -> bool: ...

    @property
    def error(self) -> pb.ErrorInfo: ...


A = TypeVar("A", bound=Answer)


def succeeded(response: A, *, tool_name: str | None = None, session_id: str | None = None) -> A:
    """``response`` when it reports success; else its in-band error is raised as its class."""
    if not response.success:
        raise error_from_info(response.error, tool_name=tool_name, session_id=session_id)
    return response


def communication_error(
    what: str, error: RpcFailure, *, default_timeout_ms: float | None = None
) -> ToolCommunicationError:
    """A failed RPC as the client's transport error; ``what`` names the tool or RPC.

    ``default_timeout_ms``: the call ran under the client's default deadline, which the error
    then names when it passed (gRPC's own wording, "Deadline Exceeded", says nothing of it).
    """
    code = error.code()
    if code == grpc.StatusCode.DEADLINE_EXCEEDED and default_timeout_ms is not None:
        return ToolCommunicationError(
            what,
            code,
            f"no answer from the host within {default_timeout_ms / 1000:g} s "
            "(the client's default_timeout_ms); the call was cancelled",
        )
    return ToolCommunicationError(what, code, error.details() or "")


def stream_answer(what: str, response: pb.ToolCallResponse) -> pb.ToolCallResponse:
    """A response from the call stream, as ExecuteTool would have given it.

    A call the host refused (or stopped) because it shuts down is answered in-band on the
    stream (``Unavailable``, ``details.reason`` "shutting_down"); ExecuteTool gets the status
    UNAVAILABLE then, so this raises the same ``ToolCommunicationError``.
    """
    error = response.error
    if (
        not response.success
        and error.type == ErrorType.UNAVAILABLE
        and error.details.get("reason") == "shutting_down"
    ):
        raise ToolCommunicationError(what, grpc.StatusCode.UNAVAILABLE, error.message)
    return response


class CallStream(Protocol):
    """What ``takes_call`` asks of a call stream (asyncio or blocking)."""

    @property
    def going_away(self) -> bool: ...


def takes_call(calls: CallStream, request: bytes, max_request_bytes: int) -> bool:
    """Whether a tool call (``request`` serialized) goes on the call stream: a small request,
    while the host is not closing the stream's connection (GOAWAY).

    A larger one goes through ExecuteTool, so that it does not hold up the small calls behind it.
    """
    return len(request) <= max_request_bytes and not calls.going_away


def stream_failure(
    what: str, error: TimeoutError | CallStreamEnded | OSError, timeout_s: float | None, address: str
) -> ToolCommunicationError | None:
    """A call stream's failure as the client's error; None for a host without the stream
    (UNIMPLEMENTED), where the call never ran and may go through ExecuteTool instead."""
    if isinstance(error, CallStreamEnded):
        if error.end.code == grpc.StatusCode.UNIMPLEMENTED:
            return None
        return ToolCommunicationError(what, error.end.code, error.end.message)
    if isinstance(error, TimeoutError):
        return timeout_error(what, timeout_s)
    return ToolCommunicationError(
        what, grpc.StatusCode.UNAVAILABLE, f"cannot reach the host at {address}: {error}"
    )


def stream_incomplete(what: str) -> ToolCommunicationError:
    """A tool stream that ended without its ``complete`` chunk: the host or the connection broke off."""
    return ToolCommunicationError(what, grpc.StatusCode.UNKNOWN, "the stream ended without a complete chunk")


def timeout_error(what: str, timeout_s: float | None) -> ToolCommunicationError:
    """A call the host did not answer by its deadline (it was cancelled), as gRPC's DEADLINE_EXCEEDED."""
    slack = TOOL_BRIDGE_CONFIG["deadline_slack_ms"]
    return ToolCommunicationError(
        what,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        f"no answer from the host within {timeout_s:g} s (the call's timeout plus {slack} ms); "
        "the call was cancelled",
    )


def error_details(info: pb.ErrorInfo) -> dict[str, Any]:
    """The error's details, with the host's stack trace (when it sends one) as ``details["stacktrace"]``."""
    details: dict[str, Any] = dict(info.details)
    if info.stacktrace:
        details["stacktrace"] = info.stacktrace
    return details


def error_from_info(
    info: pb.ErrorInfo, *, tool_name: str | None = None, session_id: str | None = None
) -> ToolBridgeError:
    """The client error for an in-band ``ErrorInfo``.

    Session errors are ``SessionError``; in a call to ``tool_name`` any other type is a
    ``ToolCallError`` (``ToolExecutionError`` when the tool raised); else a ``ToolBridgeError``.
    """
    details = error_details(info)
    error_type = info.type or ErrorType.INTERNAL_ERROR
    if error_type in SESSION_ERROR_TYPES:
        return SessionError(info.message, error_type, session_id, details)
    if tool_name is not None:
        return tool_call_error(tool_name, error_type, info.message, details)
    return ToolBridgeError(info.message, error_type, details)
