"""The error classes of the Python client.

Every error carries ``error_type``, one of the documented vocabulary in
``ErrorType`` (docs/errors.md), so callers can branch on it the same way in
Python and TypeScript.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import grpc


class ErrorType(StrEnum):
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
    UNAVAILABLE = "Unavailable"
    INTERNAL_ERROR = "InternalError"
    COMMUNICATION_ERROR = "CommunicationError"


SESSION_ERROR_TYPES = frozenset({ErrorType.SESSION_NOT_FOUND, ErrorType.SESSION_LIMIT_EXCEEDED})


class ToolBridgeError(Exception):
    """Base class of every error the client raises."""

    def __init__(self, message: str, error_type: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type
        self.details: dict[str, Any] = details or {}


class ToolExecutionError(ToolBridgeError):
    """The host answered, and the tool call failed (validation, the tool raised, timeout, ...)."""

    def __init__(
        self, tool_name: str, error_type: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"Tool '{tool_name}' failed ({error_type}): {message}", error_type, details)
        self.tool_name = tool_name
        self.reason = message


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
        error_type: str = ErrorType.SESSION_NOT_FOUND,
        session_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, error_type, details)
        self.session_id = session_id


class InvalidValueError(ToolBridgeError, ValueError):
    """A value cannot be encoded to, or decoded from, the typed Value message."""

    def __init__(self, reason: str, message: str, path: str = "") -> None:
        super().__init__(message, ErrorType.INVALID_VALUE, {"reason": reason, "path": path})
        self.reason = reason
        self.path = path
