"""How a failed call is reported: one exception type carrying an ``ErrorInfo``'s fields.

Everything a tool call can raise is turned into a ``CallFailure`` by ``failure_from``, the
one place that knows the client's error classes, so the worker answers with the same error
vocabulary as the host (docs/errors.md).
"""

from __future__ import annotations

import json
import re
import traceback
from typing import Any

import pydantic

from toolbridge.core.errors import ErrorType, ToolBridgeError
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


def output_failure(tool: str, error: pydantic.ValidationError, chunk: int | None = None) -> CallFailure:
    """A result (or a stream's chunk) its output schema refuses: the tool's failure, named as the
    host names it for a TypeScript tool (``details.reason = "output_schema"``, ``details.path``)."""
    problems = error.errors(include_url=False)
    paths = [_json_path(problem.get("loc", ())) for problem in problems]
    listed = "; ".join(
        f"{path}: {problem.get('msg', 'invalid')}"
        for path, problem in zip(paths[:3], problems[:3], strict=True)
    )
    what = "a result" if chunk is None else f"chunk {chunk}"
    details = {"reason": "output_schema", "path": paths[0] if paths else "$"}
    if chunk is not None:
        details["chunk"] = str(chunk)
    message = f"tool '{tool}' returned {what} that does not match its output schema: {listed}"
    return CallFailure(ErrorType.TOOL_EXECUTION_ERROR, message, details)


_NAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


def _json_path(location: Any) -> str:
    """``$.items[2].price``, the form of the host's paths."""
    path = "$"
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(part, str) and _NAME.fullmatch(part):
            path += f".{part}"
        else:
            path += f"[{json.dumps(str(part))}]"
    return path


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
