"""SyncToolBridgeClient: the client for code without an event loop (scripts, threads, DSPy's
sync paths), with the API of ``ToolBridgeClient`` minus ``await``.

with SyncToolBridgeClient("127.0.0.1:50051") as client:
    client.initialize_session()
    total = client.execute_tool("add", 2, b=3)
    for chunk in client.stream_tool("index_corpus"):
        print(chunk)
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from datetime import datetime
from types import TracebackType
from typing import Any

import grpc

from toolbridge.client.base import ClientBase, max_attempts_of
from toolbridge.client.proxy import SyncGRPCProxyTool, build_sync_proxy_tools
from toolbridge.core.specs import Session, SessionDetails, ToolSpec, to_datetime
from toolbridge.features.batch import BatchRequest, execute_batch_blocking
from toolbridge.features.health import health_check_blocking
from toolbridge.features.metrics import HostMetrics, get_metrics_blocking
from toolbridge.features.pool import SyncChannelPool
from toolbridge.features.retry import (
    DEFAULT_BACKOFF,
    BackoffPolicy,
    RetryEvent,
    SessionRecreated,
    run_with_retry_blocking,
)
from toolbridge.transport import SyncTransport, TlsConfig
from toolbridge.v1 import toolbridge_pb2 as pb


class SyncToolBridgeClient(ClientBase):
    """``ToolBridgeClient`` for blocking code: the same methods, parameters and errors, no ``await``.

    Its own blocking transport: no event loop, no thread of its own. One client may be shared
    by many threads; their tool calls go on one multiplexed call stream, each thread waiting
    for its own response. It works inside a running event loop too (it blocks that loop while
    it waits, as any blocking call does). ``tls``, ``token``, ``max_calls_per_stream`` and the
    timeouts as ``ToolBridgeClient``'s.
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
        max_calls_per_stream: int | None = None,
    ) -> None:
        super().__init__(server_address, default_timeout_ms)
        #: The wire under this client; features built on the client call the host through it.
        self.transport = SyncTransport(
            server_address,
            channel=channel,
            max_message_bytes=max_message_bytes,
            tls=tls,
            token=token,
            multiplex=multiplex,
            default_timeout_ms=self.default_timeout_ms,
            max_calls_per_stream=max_calls_per_stream,
        )

    @classmethod
    @contextmanager
    def from_pool(
        cls, pool: SyncChannelPool, target: str | None = None, **options: Any
    ) -> Iterator[SyncToolBridgeClient]:
        """A client on a pooled channel (to ``target``, or the pool's next one); the channel stays open.

        The pool's token goes with the client's calls unless ``options`` give another.
        """
        resolved, channel = pool.checkout(target)
        with cls(resolved, channel=channel, **{"token": pool.token, **options}) as client:
            yield client

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
            "InitializeSession", self.transport.stub.InitializeSession, request, session_id=session_id or None
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
        response = self.transport.unary("CleanupSession", self.transport.stub.CleanupSession, request)
        self.session_ended(response, session_id)

    def health_check(self, *, timeout_ms: float | None = None) -> bool:
        """True when the host answers SERVING within ``timeout_ms`` (5 s by default); never raises."""
        return health_check_blocking(
            self.transport.channel, timeout_ms=timeout_ms, metadata=self.transport.metadata
        )

    # -- tools ------------------------------------------------------------------------------

    def list_tools(self) -> list[ToolSpec]:
        """The specs of every tool this session can call (global and session tools)."""
        session_id = self.require_session()
        request = pb.ListToolsRequest(session_id=session_id)
        response = self.transport.checked(
            "ListTools", self.transport.stub.ListTools, request, session_id=session_id
        )
        return [ToolSpec.from_pb(spec) for spec in response.tools]

    def proxy_tools(self) -> dict[str, SyncGRPCProxyTool]:
        """One callable proxy per tool of the session, by name (streaming tools get the streaming proxy)."""
        return build_sync_proxy_tools(self.list_tools(), self)

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
        """``execute_tool`` with call options: ``timeout_ms`` caps the tool's own timeout on the host
        (``default_timeout_ms`` when not given); ``request_id`` is the call's idempotency key
        (docs/replay.md: the same call repeated under it is replayed, another call refused)."""
        request = self.call_request(tool_id, args, kwargs, timeout_ms, request_id)
        return self.transport.call_tool(request)

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
        """Many calls in one round trip; results in request order, a ``ToolCallError`` for each failure.

        See ``toolbridge.features.batch.execute_batch``.
        """
        return execute_batch_blocking(
            self.transport,
            self.require_session(),
            batch_requests,
            parallel=parallel,
            stop_on_error=stop_on_error,
            max_parallel=max_parallel,
            timeout_ms=timeout_ms,
            request_id=request_id,
        )

    def execute_with_retry(
        self,
        tool_id: str,
        /,
        *args: Any,
        max_attempts: int | None = None,
        max_retries: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """``execute_tool`` retried on transient errors; see ``call_with_retry``."""
        return self.call_with_retry(tool_id, args, kwargs, max_attempts=max_attempts, max_retries=max_retries)

    def call_with_retry(
        self,
        tool_id: str,
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        max_attempts: int | None = None,
        max_retries: int | None = None,
        backoff: BackoffPolicy | None = None,
        recover_session: bool = True,
        on_retry: Callable[[RetryEvent], None] | None = None,
        on_session_recreated: Callable[[SessionRecreated], None] | None = None,
        timeout_ms: int | None = None,
        request_id: str | None = None,
    ) -> Any:
        """``call_tool`` under the retry policy of ``features.retry``, at most ``max_attempts``
        attempts, the first included (3 by default; ``max_retries`` is the guide's older name).

        Every attempt sends the same request id (a fresh one unless given), so the host
        answers an attempt whose call already completed with the recorded outcome: any tool
        is retried after a transport failure without running twice (docs/replay.md). With
        ``recover_session``, a session the host lost (a restart on the memory store) is
        re-created under the same id; when it comes back empty the caller is told:
        ``on_session_recreated`` is called and the call goes on, or without it
        ``SessionRecreatedError`` is raised.
        """
        arguments, keywords = tuple(args), dict(kwargs or {})
        request_id, session_id, metadata = self.retried_call(request_id)

        def attempt() -> Any:
            return self.call_tool(tool_id, arguments, keywords, timeout_ms=timeout_ms, request_id=request_id)

        def recover() -> bool:
            return self.initialize_session(session_id, metadata).created

        return run_with_retry_blocking(
            attempt,
            recover_session=recover if recover_session else None,
            max_attempts=max_attempts_of(max_attempts, max_retries),
            backoff=backoff or DEFAULT_BACKOFF,
            on_retry=on_retry,
            on_session_recreated=on_session_recreated,
            session_id=session_id,
        )

    def get_metrics(self, *, timeout_ms: float | None = None) -> HostMetrics:
        """The host's counters: calls, errors by type and time per tool, sessions, stream chunks, batches."""
        return get_metrics_blocking(self.transport, timeout_ms=timeout_ms)

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
        """``stream_tool`` with call options.

        ``timeout_ms`` is the total budget (the longest the whole stream may run, and plus
        the usual slack its gRPC deadline); ``idle_timeout_ms`` the longest wait for the next
        chunk (``default_timeout_ms`` when not given). The host applies the shorter of each and
        the tool's own; when one passes the stream raises ``Timeout`` with
        ``details["timeout"]`` ``"total"`` or ``"idle"``.
        """
        request = self.stream_request(tool_id, args, kwargs, timeout_ms, idle_timeout_ms, request_id)
        # Nothing is sent before the first chunk is asked for; closing this generator closes the stream.
        with closing(self.transport.stream_tool(request)) as chunks:
            yield from chunks
