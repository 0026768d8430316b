"""How a failed call is reported: one exception type carrying an ``ErrorInfo``'s fields.

Everything a tool call can raise is turned into a ``CallFailure`` by ``failure_from``, the
one place that knows the client's error classes, so the worker answers with the same error
vocabulary as the host (docs/errors.md).
"""

from __future__ import annotations

import traceback
from typing import Any

import pydantic

from toolbridge.errors import ErrorType, ToolBridgeError
from toolbridge.v1 import toolbridge_pb2 as pb


class CallFailure(Exception):
    """A tool call failed with ``type`` (an ErrorType), ``message`` and string ``details``."""

    def __init__(self, type: str, message: str, details: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.type = type
        self.message = message
        self.details = details or {}

    def to_pb(self, stacktrace: str = "") -> pb.ErrorInfo:
        return pb.ErrorInfo(type=self.type, message=self.message, details=self.details, stacktrace=stacktrace)


def validation_failure(tool: str, error: pydantic.ValidationError) -> CallFailure:
    """The first problem pydantic found, naming the argument like the host does."""
    first = error.errors(include_url=False)[0]
    location = [str(part) for part in first.get("loc", ())]
    field = location[0] if location else ""
    where = ".".join(location) or "(arguments)"
    message = f"tool '{tool}': argument {where}: {first.get('msg', 'invalid')}"
    return CallFailure(ErrorType.VALIDATION_ERROR, message, {"field": field})


def failure_from(tool: str, error: BaseException) -> CallFailure:
    """The in-band form of whatever a tool call raised.

    A toolbridge error raised inside the tool (a call it made to the host failed) keeps its
    type, as a TypeScript tool's BridgeError does; any other exception is the tool's own failure.
    """
    if isinstance(error, CallFailure):
        return error
    if isinstance(error, ToolBridgeError):
        error_type = str(_error_type_of(error))
        details = {k: str(v) for k, v in error.details.items()}
        return CallFailure(error_type, error.message, details)
    exception = type(error).__name__
    message = str(error) or exception
    return CallFailure(ErrorType.TOOL_EXECUTION_ERROR, message, {"exception": exception})


def _error_type_of(error: ToolBridgeError) -> Any:
    # The one place that reads the client error's type attribute.
    return error.type or ErrorType.INTERNAL_ERROR


def stacktrace_of(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))
