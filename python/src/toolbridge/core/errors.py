"""The error classes of the Python package.

Every error carries ``type``, one of the documented vocabulary in ``ErrorType``
(docs/errors.md), the same values as ``BridgeError.type`` in TypeScript, so callers
can branch on it the same way in both languages.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Only named in annotations: a worker process that imports the errors loads no gRPC.
    import grpc


class ErrorType(StrEnum):
    """The error vocabulary shared by the host and both clients (docs/errors.md)."""

    SESSION_NOT_FOUND = "SessionNotFound"
    SESSION_LIMIT_EXCEEDED = "SessionLimitExceeded"
    TOOL_NOT_FOUND = "ToolNotFound"
    VALIDATION_ERROR = "ValidationError"
    INVALID_VALUE = "InvalidValue"
    TOOL_EXECUTION_ERROR = "ToolExecutionError"
    TIMEOUT = "Timeout"
    CANCELLED = "Cancelled"
    RATE_LIMIT_EXCEEDED = "RateLimitExceeded"
    CONCURRENCY_LIMIT_EXCEEDED = "ConcurrencyLimitExceeded"
    RESOURCE_EXHAUSTED = "ResourceExhausted"
    VARIABLE_NOT_FOUND = "VariableNotFound"
    VERSION_CONFLICT = "VersionConflict"
    CONSTRAINT_VIOLATION = "ConstraintViolation"
    REQUEST_ID_REUSED = "RequestIdReused"
    UNAVAILABLE = "Unavailable"
    INTERNAL_ERROR = "InternalError"
    COMMUNICATION_ERROR = "CommunicationError"


SESSION_ERROR_TYPES = frozenset({ErrorType.SESSION_NOT_FOUND, ErrorType.SESSION_LIMIT_EXCEEDED})


class ToolBridgeError(Exception):
    """Base class of every error the client raises; ``type`` is from ``ErrorType``."""

    def __init__(self, message: str, type: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.type = type
        self.details: dict[str, Any] = details or {}


class ToolCallError(ToolBridgeError):
    """The host answered, and the tool call failed: bad arguments, unknown tool, timeout, rate limit, ...

    ``type`` says which; ``reason`` is the host's message. When the tool itself raised,
    the error is the subclass ``ToolExecutionError``. ``tool_call_error`` picks the class.
    """

    def __init__(
        self, tool_name: str, type: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"Tool '{tool_name}' failed ({type}): {message}", type, details)
        self.tool_name = tool_name
        self.reason = message


class ToolExecutionError(ToolCallError):
    """The tool itself raised (``type`` is always ``ToolExecutionError``); ``reason`` is its message."""

    def __init__(self, tool_name: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(tool_name, ErrorType.TOOL_EXECUTION_ERROR, message, details)


def tool_call_error(
    tool_name: str, type: str, message: str, details: dict[str, Any] | None = None
) -> ToolCallError:
    """The error of an in-band failure of a call to ``tool_name`` (``ToolExecutionError``: it raised)."""
    if type == ErrorType.TOOL_EXECUTION_ERROR:
        return ToolExecutionError(tool_name, message, details)
    return ToolCallError(tool_name, type, message, details)


class ToolCommunicationError(ToolBridgeError):
    """The call did not complete at the transport level; ``code`` is the gRPC status."""

    def __init__(self, tool_name: str, code: grpc.StatusCode, details: str) -> None:
        super().__init__(
            f"Communication error for '{tool_name}': {code.name} - {details}",
            ErrorType.COMMUNICATION_ERROR,
            {"grpc_code": code.name},
        )
        self.tool_name = tool_name
        self.code = code
        self.grpc_details = details


class SessionError(ToolBridgeError):
    """The session is unknown, expired, over the host's limit, or not initialized."""

    def __init__(
        self,
        message: str,
        type: str = ErrorType.SESSION_NOT_FOUND,
        session_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, type, details)
        self.session_id = session_id


class InvalidValueError(ToolBridgeError, ValueError):
    """A value cannot be encoded to, or decoded from, the typed Value message."""

    def __init__(self, reason: str, message: str, path: str = "") -> None:
        super().__init__(message, ErrorType.INVALID_VALUE, {"reason": reason, "path": path})
        self.reason = reason
        self.path = path
