"""Failures as the client's error classes (docs/errors.md): in-band ``ErrorInfo`` and failed RPCs."""

from __future__ import annotations

from typing import Any, Protocol

import grpc

from toolbridge.config import TOOL_BRIDGE_CONFIG
from toolbridge.errors import (
    SESSION_ERROR_TYPES,
    ErrorType,
    SessionError,
    ToolBridgeError,
    ToolCommunicationError,
    tool_call_error,
)
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


def communication_error(what: str, error: RpcFailure) -> ToolCommunicationError:
    """A failed RPC as the client's transport error; ``what`` names the tool or RPC."""
    return ToolCommunicationError(what, error.code(), error.details() or "")


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
