"""What the asyncio client and its blocking twin share: the session they work in, their call
defaults, and the requests and answers of their RPCs (no I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from toolbridge.core.errors import ErrorType, SessionError
from toolbridge.core.specs import Session
from toolbridge.transport import (
    default_timeout,
    error_from_info,
    new_request_id,
    tool_call_request,
    tool_stream_request,
)
from toolbridge.v1 import toolbridge_pb2 as pb

#: Attempts of a retried call, the first included, when the caller says nothing.
DEFAULT_MAX_ATTEMPTS = 3


def max_attempts_of(max_attempts: int | None, max_retries: int | None) -> int:
    """The attempts a retried call makes: ``max_attempts``, or ``max_retries`` (the original
    guide's name for the same count, still accepted), else ``DEFAULT_MAX_ATTEMPTS``."""
    if max_attempts is not None and max_retries is not None:
        raise TypeError("pass max_attempts or its older name max_retries, not both")
    chosen = max_attempts if max_attempts is not None else max_retries
    return DEFAULT_MAX_ATTEMPTS if chosen is None else chosen


class ClientBase:
    """The session and call defaults of a client; ``ToolBridgeClient`` and ``SyncToolBridgeClient``
    add the I/O."""

    def __init__(self, server_address: str, default_timeout_ms: int | None) -> None:
        self.server_address = server_address
        self.session_id: str | None = None
        # Kept to re-create the session after a host restart (see call_with_retry).
        self.session_metadata: dict[str, str] = {}
        #: The timeout of every tool call that sets none (a stream: its idle timeout), and the
        #: deadline of every other unary RPC but a batch (docs/configuration.md, "Client settings").
        self.default_timeout_ms = default_timeout(default_timeout_ms)

    def require_session(self) -> str:
        """The current session's id; ``SessionError`` before ``initialize_session()``."""
        if self.session_id is None:
            raise SessionError("no session: call initialize_session() first", ErrorType.SESSION_NOT_FOUND)
        return self.session_id

    def session_started(
        self, response: pb.InitializeSessionResponse, metadata: Mapping[str, str] | None
    ) -> Session:
        """Takes the session InitializeSession created or attached to as the current one."""
        self.session_id = response.session_id
        self.session_metadata = dict(metadata or {})
        return Session.from_pb(response)

    def session_ended(self, response: pb.StatusResponse, session_id: str) -> None:
        """Ends the current session after CleanupSession; one the host no longer knows is fine."""
        if not response.success and response.error.type != ErrorType.SESSION_NOT_FOUND:
            raise error_from_info(response.error, session_id=session_id)
        self.session_id = None

    def retried_call(self, request_id: str | None) -> tuple[str, str, dict[str, str]]:
        """What every attempt of a retried call shares: its request id (a fresh one unless
        given), and the session and metadata to re-create should the host have lost it."""
        return request_id or new_request_id(), self.require_session(), dict(self.session_metadata)

    def call_request(
        self,
        tool_id: str,
        args: Iterable[Any],
        kwargs: Mapping[str, Any] | None,
        timeout_ms: int | None,
        request_id: str | None,
    ) -> pb.ToolCallRequest:
        """A call in the current session, with the default timeout unless one is given."""
        return tool_call_request(
            self.require_session(),
            tool_id,
            args,
            kwargs or {},
            timeout_ms=timeout_ms or self.default_timeout_ms,
            request_id=request_id,
        )

    def stream_request(
        self,
        tool_id: str,
        args: Iterable[Any],
        kwargs: Mapping[str, Any] | None,
        timeout_ms: int | None,
        idle_timeout_ms: int | None,
        request_id: str | None,
    ) -> pb.ToolStreamRequest:
        """A stream in the current session; the default timeout is its idle timeout unless one is given."""
        return tool_stream_request(
            self.require_session(),
            tool_id,
            args,
            kwargs or {},
            timeout_ms=timeout_ms,
            idle_timeout_ms=idle_timeout_ms or self.default_timeout_ms,
            request_id=request_id,
        )
