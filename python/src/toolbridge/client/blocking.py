"""SyncToolBridgeClient: the client for code without an event loop (scripts, threads, DSPy's
sync paths), with the API of ``ToolBridgeClient`` minus ``await``.

with SyncToolBridgeClient("127.0.0.1:50051") as client:
    client.initialize_session()
    total = client.execute_tool("add", 2, b=3)
    for chunk in client.stream_tool("index_corpus"):
        print(chunk)
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from contextlib import closing
from datetime import datetime
from types import TracebackType
from typing import Any

import grpc

from toolbridge.client.base import ClientBase
from toolbridge.core.specs import Session, SessionDetails, ToolSpec, to_datetime
from toolbridge.features.batch import BatchRequest, batch_request, batch_results
from toolbridge.features.health import health_check_blocking
from toolbridge.features.metrics import HostMetrics, host_metrics
from toolbridge.features.retry import (
    DEFAULT_BACKOFF,
    BackoffPolicy,
    RetryEvent,
    SessionRecreated,
    run_with_retry_blocking,
)
from toolbridge.transport import TlsConfig, deadline_s, new_request_id
from toolbridge.transport.blocking import SyncTransport
from toolbridge.v1 import toolbridge_pb2 as pb


class SyncToolBridgeClient(ClientBase):
    """``ToolBridgeClient`` for blocking code: the same methods, options and errors, no ``await``.

    Its own blocking transport: no event loop, no thread of its own. One client may be shared
    by many threads; their tool calls go on one multiplexed call stream, each thread waiting
    for its own response. It works inside a running event loop too (it blocks that loop while
    it waits, as any blocking call does). ``tls`` and ``token`` as ``ToolBridgeClient``'s.
    """

    def __init__(
        self,
        server_address: str,
        *,
        channel: grpc.Channel | None = None,
        max_message_bytes: int | None = None,
        tls: TlsConfig | None = None,
        token: str | None = None,
        default_timeout_ms: int | None = None,
        multiplex: bool = True,
    ) -> None:
        super().__init__(server_address, default_timeout_ms)
        #: The wire under this client.
        self.transport = SyncTransport(
            server_address,
            channel=channel,
            max_message_bytes=max_message_bytes,
            tls=tls,
            token=token,
            multiplex=multiplex,
            default_timeout_ms=self.default_timeout_ms,
        )

    @property
    def channel(self) -> grpc.Channel:
        return self.transport.channel

    def __enter__(self) -> SyncToolBridgeClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Closes the connections this client opened; the session stays alive on the host."""
        self.transport.close()

    # -- sessions ---------------------------------------------------------------------------

    def initialize_session(self, session_id: str = "", metadata: Mapping[str, str] | None = None) -> Session:
        """Creates a session, or attaches to a live one with this id; the host picks an id when empty."""
        request = pb.InitializeSessionRequest(session_id=session_id, metadata=dict(metadata or {}))
        response = self.transport.checked(
            "InitializeSession",
            self.transport.stub.InitializeSession,
            request,
            session_id=session_id or None,
        )
        return self.session_started(response, metadata)

    def session_info(self) -> SessionDetails:
        session_id = self.require_session()
        request = pb.GetSessionInfoRequest(session_id=session_id)
        response = self.transport.checked(
            "GetSessionInfo", self.transport.stub.GetSessionInfo, request, session_id=session_id
        )
        return SessionDetails.from_pb(response.session)

    def heartbeat(self) -> datetime:
        """Keeps the session alive; returns its new expiry."""
        session_id = self.require_session()
        request = pb.HeartbeatRequest(session_id=session_id)
        response = self.transport.checked(
            "Heartbeat", self.transport.stub.Heartbeat, request, session_id=session_id
        )
        return to_datetime(response.expires_at)

    def cleanup(self) -> None:
        """Ends the session on the host (its tools and variables go with it); a gone session is fine."""
        session_id = self.session_id
        if session_id is None:
            return
        request = pb.CleanupSessionRequest(session_id=session_id)
        self.session_ended(
            self.transport.unary("CleanupSession", self.transport.stub.CleanupSession, request), session_id
        )

    def health_check(self, timeout_s: float | None = None) -> bool:
        return health_check_blocking(self.transport.channel, timeout_s, self.transport.metadata)

    # -- tools ------------------------------------------------------------------------------

    def list_tools(self) -> list[ToolSpec]:
        """The specs of every tool this session can call (global and session tools)."""
        session_id = self.require_session()
        request = pb.ListToolsRequest(session_id=session_id)
        response = self.transport.checked(
            "ListTools", self.transport.stub.ListTools, request, session_id=session_id
        )
        return [ToolSpec.from_pb(spec) for spec in response.tools]

    def execute_tool(self, tool_id: str, /, *args: Any, **kwargs: Any) -> Any:
        """Calls a tool: positional arguments bind to its parameters in order, keywords by name.

        Use ``call_tool`` for a per-call timeout or request id (keeps them apart from tool arguments).
        """
        return self.call_tool(tool_id, args, kwargs)

    def call_tool(
        self,
        tool_id: str,
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        timeout_ms: int | None = None,
        request_id: str | None = None,
    ) -> Any:
        """``execute_tool`` with call options, as ``ToolBridgeClient.call_tool``."""
        return self.transport.call_tool(self.call_request(tool_id, args, kwargs, timeout_ms, request_id))

    def execute_batch(
        self,
        batch_requests: Sequence[BatchRequest],
        *,
        parallel: bool = True,
        stop_on_error: bool = False,
        max_parallel: int = 0,
        timeout_ms: int | None = None,
        request_id: str | None = None,
    ) -> list[Any]:
        """Many calls in one round trip, as ``ToolBridgeClient.execute_batch``."""
        session_id = self.require_session()
        request = batch_request(
            session_id,
            batch_requests,
            parallel=parallel,
            stop_on_error=stop_on_error,
            max_parallel=max_parallel,
            timeout_ms=timeout_ms,
            request_id=request_id,
        )
        response = self.transport.checked(
            "BatchExecuteTools",
            self.transport.stub.BatchExecuteTools,
            request,
            timeout_s=deadline_s(timeout_ms),
            default_deadline=False,  # as ToolBridgeClient's: a batch may legitimately run long
            session_id=session_id,
        )
        return batch_results(batch_requests, response)

    def execute_with_retry(self, tool_id: str, /, *args: Any, max_retries: int = 3, **kwargs: Any) -> Any:
        """``execute_tool`` retried on transient errors; see ``call_with_retry``."""
        return self.call_with_retry(tool_id, args, kwargs, max_retries=max_retries)

    def call_with_retry(
        self,
        tool_id: str,
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        max_retries: int = 3,
        backoff: BackoffPolicy | None = None,
        recover_session: bool = True,
        on_retry: Callable[[RetryEvent], None] | None = None,
        on_session_recreated: Callable[[SessionRecreated], None] | None = None,
        timeout_ms: int | None = None,
        request_id: str | None = None,
    ) -> Any:
        """``call_tool`` under the retry policy, as ``ToolBridgeClient.call_with_retry``."""
        arguments, keywords = tuple(args), dict(kwargs or {})
        request_id = request_id or new_request_id()
        session_id, metadata = self.require_session(), dict(self.session_metadata)

        def attempt() -> Any:
            return self.call_tool(tool_id, arguments, keywords, timeout_ms=timeout_ms, request_id=request_id)

        def recover() -> bool:
            return self.initialize_session(session_id, metadata).created

        return run_with_retry_blocking(
            attempt,
            recover_session=recover if recover_session else None,
            max_retries=max_retries,
            backoff=backoff or DEFAULT_BACKOFF,
            on_retry=on_retry,
            on_session_recreated=on_session_recreated,
            session_id=session_id,
        )

    def get_metrics(self, timeout_s: float | None = None) -> HostMetrics:
        """The host's counters: calls, errors by type and time per tool, sessions, stream chunks, batches."""
        return host_metrics(
            self.transport.unary(
                "GetMetrics", self.transport.stub.GetMetrics, pb.GetMetricsRequest(), timeout_s=timeout_s
            )
        )

    def stream_tool(self, tool_id: str, /, *args: Any, **kwargs: Any) -> Generator[Any, None, None]:
        """Streams a tool's chunks. Leaving the loop early cancels the call and the host aborts the tool.

        Close the generator promptly when you stop early (``contextlib.closing``), so the host
        stops the tool at once rather than when the generator is garbage collected.
        """
        return self.open_stream(tool_id, args, kwargs)

    def open_stream(
        self,
        tool_id: str,
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        timeout_ms: int | None = None,
        idle_timeout_ms: int | None = None,
        request_id: str | None = None,
    ) -> Generator[Any, None, None]:
        """``stream_tool`` with call options, as ``ToolBridgeClient.open_stream``."""
        request = self.stream_request(tool_id, args, kwargs, timeout_ms, idle_timeout_ms, request_id)
        with closing(self.transport.stream_tool(request)) as chunks:
            yield from chunks
