"""ToolBridgeClient: the Python side of the bridge, on ``grpc.aio``.

async with ToolBridgeClient("127.0.0.1:50051") as client:
    await client.initialize_session()
    total = await client.execute_tool("add", 2, b=3)
    async for chunk in client.stream_tool("index_corpus"):
        print(chunk)
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn

import grpc
from google.protobuf.timestamp_pb2 import Timestamp as PbTimestamp

from toolbridge.config import TOOL_BRIDGE_CONFIG, create_grpc_channel
from toolbridge.errors import (
    SESSION_ERROR_TYPES,
    ErrorType,
    InvalidValueError,
    SessionError,
    ToolBridgeError,
    ToolCommunicationError,
    ToolExecutionError,
)
from toolbridge.health import health_check
from toolbridge.specs import Session, SessionDetails, ToolSpec
from toolbridge.v1 import toolbridge_pb2 as pb
from toolbridge.v1 import values_pb2 as pb_values
from toolbridge.v1.toolbridge_pb2_grpc import ToolBridgeStub
from toolbridge.values import decode_value, encode_value

if TYPE_CHECKING:
    from toolbridge.batch import BatchRequest
    from toolbridge.metrics import HostMetrics
    from toolbridge.proxy import AsyncGRPCProxyTool
    from toolbridge.retry import BackoffPolicy, RetryEvent


class ToolBridgeClient:
    """Calls the tools of a toolbridge host within one session.

    The client owns its channel unless one is passed in (e.g. from a channel pool).
    Errors: ``SessionError`` (unknown/expired session, session limit),
    ``ToolExecutionError`` (the host answered and the call failed: validation,
    unknown tool, the tool raised, timeout, ...), ``ToolCommunicationError`` (the
    call failed at the transport level; ``code`` is the gRPC status).
    """

    def __init__(
        self,
        server_address: str,
        *,
        channel: grpc.aio.Channel | None = None,
        max_message_bytes: int | None = None,
    ) -> None:
        self.server_address = server_address
        self._owns_channel = channel is None
        self.channel = channel or create_grpc_channel(server_address, max_message_bytes=max_message_bytes)
        self.stub = ToolBridgeStub(self.channel)
        self.session_id: str | None = None
        # Kept to re-create the session after a host restart (retry.py).
        self.session_metadata: dict[str, str] = {}

    async def __aenter__(self) -> ToolBridgeClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Closes the channel if this client created it; the session stays alive on the host."""
        if self._owns_channel:
            await self.channel.close(None)

    # -- sessions ---------------------------------------------------------------------------

    async def initialize_session(
        self, session_id: str = "", metadata: Mapping[str, str] | None = None
    ) -> Session:
        """Creates a session, or attaches to a live one with this id; the host picks an id when empty."""
        request = pb.InitializeSessionRequest(session_id=session_id, metadata=dict(metadata or {}))
        response = await self._checked(
            "InitializeSession", self.stub.InitializeSession(request), session_id=session_id or None
        )
        self.session_id = response.session_id
        self.session_metadata = dict(metadata or {})
        return Session(
            session_id=response.session_id,
            tool_count=response.tool_count,
            capabilities=tuple(response.capabilities),
            created=response.created,
        )

    async def session_info(self) -> SessionDetails:
        session_id = self._require_session()
        request = pb.GetSessionInfoRequest(session_id=session_id)
        response = await self._checked(
            "GetSessionInfo", self.stub.GetSessionInfo(request), session_id=session_id
        )
        s = response.session
        return SessionDetails(
            session_id=s.session_id,
            metadata=dict(s.metadata),
            created_at=_to_datetime(s.created_at),
            last_accessed_at=_to_datetime(s.last_accessed_at),
            expires_at=_to_datetime(s.expires_at),
            tool_count=s.tool_count,
            variable_count=s.variable_count,
        )

    async def heartbeat(self) -> datetime:
        """Keeps the session alive; returns its new expiry."""
        session_id = self._require_session()
        request = pb.HeartbeatRequest(session_id=session_id)
        response = await self._checked("Heartbeat", self.stub.Heartbeat(request), session_id=session_id)
        return _to_datetime(response.expires_at)

    async def cleanup(self) -> None:
        """Ends the session on the host (its tools and variables go with it); a gone session is fine."""
        session_id = self.session_id
        if session_id is None:
            return
        response = await self._unary(
            "CleanupSession", self.stub.CleanupSession(pb.CleanupSessionRequest(session_id=session_id))
        )
        if not response.success and response.error.type != ErrorType.SESSION_NOT_FOUND:
            _raise_error(response.error, session_id=session_id)
        self.session_id = None

    async def health_check(self, timeout_s: float | None = None) -> bool:
        return await health_check(self.channel, timeout_s)

    # -- tools ------------------------------------------------------------------------------

    async def list_tools(self) -> list[ToolSpec]:
        """The specs of every tool this session can call (global and session tools)."""
        session_id = self._require_session()
        request = pb.ListToolsRequest(session_id=session_id)
        response = await self._checked("ListTools", self.stub.ListTools(request), session_id=session_id)
        return [ToolSpec.from_pb(spec) for spec in response.tools]

    async def proxy_tools(self) -> dict[str, AsyncGRPCProxyTool]:
        """One callable proxy per tool of the session, by name (streaming tools get the streaming proxy)."""
        from toolbridge.proxy import build_proxy_tools

        return build_proxy_tools(await self.list_tools(), self)

    async def execute_tool(self, tool_id: str, /, *args: Any, **kwargs: Any) -> Any:
        """Calls a tool: positional arguments bind to its parameters in order, keywords by name.

        Use ``call_tool`` for a per-call timeout or request id (keeps them apart from tool arguments).
        """
        return await self.call_tool(tool_id, args, kwargs)

    async def call_tool(
        self,
        tool_id: str,
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        timeout_ms: int | None = None,
        request_id: str | None = None,
    ) -> Any:
        """``execute_tool`` with call options: ``timeout_ms`` caps the tool's own timeout on the host."""
        session_id = self._require_session()
        request = pb.ToolCallRequest(
            session_id=session_id,
            tool_id=tool_id,
            args=_encode_args(args),
            kwargs=_encode_kwargs(kwargs or {}),
            request_id=request_id or f"req_{uuid.uuid4().hex}",
            timeout_ms=timeout_ms or 0,
        )
        call = self.stub.ExecuteTool(request, timeout=_deadline(timeout_ms))
        response = await self._checked(tool_id, call, tool_name=tool_id, session_id=session_id)
        return decode_value(response.result)

    async def execute_batch(
        self,
        batch_requests: Sequence[BatchRequest],
        *,
        parallel: bool = True,
        stop_on_error: bool = False,
        max_parallel: int = 0,
        timeout_ms: int | None = None,
        request_id: str | None = None,
    ) -> list[Any]:
        """Many calls in one round trip; results in request order, ``ToolExecutionError`` for failures.

        See ``toolbridge.batch.execute_batch``.
        """
        from toolbridge.batch import execute_batch

        return await execute_batch(
            self,
            batch_requests,
            parallel=parallel,
            stop_on_error=stop_on_error,
            max_parallel=max_parallel,
            timeout_ms=timeout_ms,
            request_id=request_id,
        )

    async def execute_with_retry(
        self, tool_id: str, /, *args: Any, max_retries: int = 3, **kwargs: Any
    ) -> Any:
        """``execute_tool`` retried on transient errors, as in the guide; see ``call_with_retry``."""
        return await self.call_with_retry(tool_id, args, kwargs, max_retries=max_retries)

    async def call_with_retry(
        self,
        tool_id: str,
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        max_retries: int = 3,
        backoff: BackoffPolicy | None = None,
        force: bool = False,
        recover_session: bool = True,
        on_retry: Callable[[RetryEvent], None] | None = None,
        timeout_ms: int | None = None,
        request_id: str | None = None,
    ) -> Any:
        """``call_tool`` under the retry policy of ``toolbridge.retry`` (``max_retries`` counts attempts)."""
        from toolbridge.retry import DEFAULT_BACKOFF, call_with_retry

        return await call_with_retry(
            self,
            tool_id,
            args,
            kwargs,
            max_retries=max_retries,
            backoff=backoff or DEFAULT_BACKOFF,
            force=force,
            recover_session=recover_session,
            on_retry=on_retry,
            timeout_ms=timeout_ms,
            request_id=request_id,
        )

    async def get_metrics(self, timeout_s: float | None = None) -> HostMetrics:
        """The host's counters: calls, errors by type and time per tool, sessions, stream chunks, batches."""
        from toolbridge.metrics import get_metrics

        return await get_metrics(self, timeout_s)

    def stream_tool(self, tool_id: str, /, *args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
        """Streams a tool's chunks. Leaving the loop early cancels the call and the host aborts the tool.

        Close the iterator promptly when you stop early (``contextlib.aclosing``), so the
        host stops the tool at once rather than when the iterator is garbage collected.
        """
        return self.open_stream(tool_id, args, kwargs)

    async def open_stream(
        self,
        tool_id: str,
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        timeout_ms: int | None = None,
        request_id: str | None = None,
    ) -> AsyncGenerator[Any, None]:
        """``stream_tool`` with call options."""
        session_id = self._require_session()
        request = pb.ToolStreamRequest(
            session_id=session_id,
            tool_id=tool_id,
            args=_encode_args(args),
            kwargs=_encode_kwargs(kwargs or {}),
            stream_id=f"stream_{uuid.uuid4().hex}",
            request_id=request_id or "",
            timeout_ms=timeout_ms or 0,
        )
        call = self.stub.StreamTool(request, timeout=_deadline(timeout_ms))
        finished = False
        try:
            async for chunk in call:
                kind = chunk.WhichOneof("content")
                if kind == "data":
                    yield decode_value(chunk.data)
                elif kind == "error":
                    finished = True
                    _raise_error(chunk.error, tool_name=tool_id, session_id=session_id)
                elif kind == "complete":
                    finished = True
                    return
            finished = True
            raise ToolCommunicationError(
                tool_id, grpc.StatusCode.UNKNOWN, "the stream ended without a complete chunk"
            )
        except grpc.aio.AioRpcError as error:
            finished = True
            raise ToolCommunicationError(tool_id, error.code(), error.details() or "") from error
        finally:
            if not finished:
                call.cancel()

    # -- helpers ----------------------------------------------------------------------------

    def _require_session(self) -> str:
        if self.session_id is None:
            raise SessionError("no session: call initialize_session() first", ErrorType.SESSION_NOT_FOUND)
        return self.session_id

    async def _unary(self, what: str, call: Any) -> Any:
        """Awaits a unary call, turning a transport failure into ToolCommunicationError."""
        try:
            return await call
        except grpc.aio.AioRpcError as error:
            raise ToolCommunicationError(what, error.code(), error.details() or "") from error

    async def _checked(
        self, what: str, call: Any, *, tool_name: str | None = None, session_id: str | None = None
    ) -> Any:
        """``_unary`` for responses with ``success``/``error``: an in-band error is raised as its class."""
        response = await self._unary(what, call)
        if not response.success:
            _raise_error(response.error, tool_name=tool_name, session_id=session_id)
        return response


def error_from_info(
    info: pb.ErrorInfo, *, tool_name: str | None = None, session_id: str | None = None
) -> ToolBridgeError:
    """The client error for an in-band ``ErrorInfo`` from the host."""
    details: dict[str, Any] = dict(info.details)
    if info.stacktrace:
        details["stacktrace"] = info.stacktrace
    error_type = info.type or ErrorType.INTERNAL_ERROR
    if error_type in SESSION_ERROR_TYPES:
        return SessionError(info.message, error_type, session_id, details)
    if tool_name is not None:
        return ToolExecutionError(tool_name, error_type, info.message, details)
    return ToolBridgeError(info.message, error_type, details)


def _raise_error(
    info: pb.ErrorInfo, *, tool_name: str | None = None, session_id: str | None = None
) -> NoReturn:
    raise error_from_info(info, tool_name=tool_name, session_id=session_id)


def _deadline(timeout_ms: int | None) -> float | None:
    # The host enforces timeout_ms; the gRPC deadline is a backstop for a host that never answers.
    if not timeout_ms:
        return None
    return (timeout_ms + int(TOOL_BRIDGE_CONFIG["deadline_slack_ms"])) / 1000


def _encode_args(args: Iterable[Any]) -> list[pb_values.Value]:
    encoded = []
    for index, arg in enumerate(args):
        try:
            encoded.append(encode_value(arg))
        except InvalidValueError as error:
            raise InvalidValueError(error.reason, f"argument {index}: {error.message}", error.path) from None
    return encoded


def _encode_kwargs(kwargs: Mapping[str, Any]) -> dict[str, pb_values.Value]:
    encoded = {}
    for key, value in kwargs.items():
        try:
            encoded[key] = encode_value(value)
        except InvalidValueError as error:
            raise InvalidValueError(error.reason, f"argument '{key}': {error.message}", error.path) from None
    return encoded


def _to_datetime(ts: PbTimestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)
