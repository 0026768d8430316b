"""The blocking transport: tool calls on the Calls stream (``h2``, a blocking socket), everything
else over a blocking ``grpc`` channel. The twin of ``aio`` for code without an event loop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from typing import Any, TypeVar

import grpc

from toolbridge.core.config import TOOL_BRIDGE_CONFIG
from toolbridge.core.tracing import outgoing_context, outgoing_metadata
from toolbridge.transport.blocking_calls import BlockingCallStream
from toolbridge.transport.channel import create_blocking_channel, open_call_stream
from toolbridge.transport.credentials import TlsConfig, token_metadata
from toolbridge.transport.error_mapping import (
    Answer,
    communication_error,
    stream_answer,
    stream_failure,
    stream_incomplete,
    succeeded,
    takes_call,
    timeout_error,
)
from toolbridge.transport.h2_calls import CallStreamEnded, frame_context
from toolbridge.transport.messages import (
    chunk_content,
    deadline_ms,
    deadline_s,
    default_timeout,
    tool_result,
)
from toolbridge.v1 import toolbridge_pb2 as pb
from toolbridge.v1.toolbridge_pb2_grpc import ToolBridgeStub

Q = TypeVar("Q")
R = TypeVar("R")
A = TypeVar("A", bound=Answer)


class SyncTransport:
    """Blocking calls to one host from any thread; every failure arrives as a ``ToolBridgeError``.

    Tool calls go on one multiplexed Calls stream (``BlockingCallStream``) shared by every
    thread, each call waiting for its own response; a call whose request is over
    ``multiplex_max_request_bytes`` goes through ExecuteTool, so a large payload does not hold
    up the small calls behind it. Every other RPC, tool streams included, goes over a blocking
    ``grpc`` channel. With ``multiplex=False``, with ``tls`` (the stream is plaintext only),
    with a channel passed in (which its owner closes), or for an address the stream cannot
    dial, tool calls use ExecuteTool. ``token`` goes with every call, on either path. Every
    other unary RPC without a timeout of its own gets ``default_timeout_ms`` (see ``unary``).
    """

    def __init__(
        self,
        address: str,
        *,
        channel: grpc.Channel | None = None,
        max_message_bytes: int | None = None,
        tls: TlsConfig | None = None,
        token: str | None = None,
        multiplex: bool = True,
        default_timeout_ms: int | None = None,
        max_calls_per_stream: int | None = None,
    ) -> None:
        self.address = address
        #: The deadline of a unary RPC that sets none.
        self.default_timeout_ms = default_timeout(default_timeout_ms)
        self.owns_channel = channel is None
        self.channel = channel or create_blocking_channel(
            address, max_message_bytes=max_message_bytes, tls=tls
        )
        self.stub = ToolBridgeStub(self.channel)
        # Sent with every call: a blocking channel has no interceptors of ours.
        self.metadata = tuple(token_metadata(token))
        #: The multiplexed call stream, or None when tool calls use ExecuteTool.
        self.calls = open_call_stream(
            BlockingCallStream,
            address,
            multiplex=multiplex,
            channel_given=channel is not None,
            tls=tls,
            max_message_bytes=max_message_bytes,
            max_calls_per_stream=max_calls_per_stream,
            metadata=self.metadata,
        )
        self._multiplex_max_bytes = int(TOOL_BRIDGE_CONFIG["multiplex_max_request_bytes"])

    def close(self) -> None:
        """Ends the call stream, and closes the channel if this transport created it."""
        if self.calls is not None:
            self.calls.close()
        if self.owns_channel:
            self.channel.close()

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        """A call's metadata: the token's, and the active trace context when there is one."""
        traced = outgoing_metadata()
        return self.metadata if traced is None else self.metadata + traced

    def unary(
        self,
        what: str,
        method: Callable[..., R],
        request: Any,
        *,
        timeout_ms: float | None = None,
        default_deadline: bool = True,
    ) -> R:
        """Calls a unary RPC; a transport failure raises ``ToolCommunicationError`` naming ``what``.

        Its deadline is ``timeout_ms``; without one, ``default_timeout_ms`` unless
        ``default_deadline`` is false, as ``AioTransport.unary``.
        """
        default_timeout_ms = self.default_timeout_ms if timeout_ms is None and default_deadline else None
        limit_ms = timeout_ms if default_timeout_ms is None else default_timeout_ms
        timeout_s = None if limit_ms is None else limit_ms / 1000
        try:
            return method(request, timeout=timeout_s, metadata=self._metadata())
        except grpc.RpcError as error:
            raise communication_error(what, error, default_timeout_ms=default_timeout_ms) from error

    def checked(
        self,
        what: str,
        method: Callable[..., A],
        request: Any,
        *,
        timeout_ms: float | None = None,
        default_deadline: bool = True,
        session_id: str | None = None,
    ) -> A:
        """``unary`` for responses with ``success``/``error``: an in-band error is raised as its class."""
        response = self.unary(what, method, request, timeout_ms=timeout_ms, default_deadline=default_deadline)
        return succeeded(response, session_id=session_id)

    def call_tool(self, request: pb.ToolCallRequest) -> Any:
        """Runs the call and returns the decoded result; a failed call raises its ``ToolCallError``.

        Its deadline is ``timeout_ms`` plus the usual slack; past it the call is cancelled and
        raises ``ToolCommunicationError`` with ``DEADLINE_EXCEEDED``.
        """
        return tool_result(request, self.execute(request))

    def execute(self, request: pb.ToolCallRequest) -> pb.ToolCallResponse:
        """The call's ToolCallResponse, from the call stream or from ExecuteTool."""
        timeout_s = deadline_s(request.timeout_ms)
        calls = self.calls
        payload = request.SerializeToString() if calls is not None else b""
        if calls is not None and takes_call(calls, payload, self._multiplex_max_bytes):
            carrier = outgoing_context()
            context = b"" if carrier is None else frame_context(carrier)
            try:
                return stream_answer(request.tool_id, calls.call(payload, timeout_s, context))
            except (TimeoutError, CallStreamEnded, OSError) as error:
                failure = stream_failure(request.tool_id, error, timeout_s, self.address)
                if failure is not None:
                    raise failure from error
                # A host without the call stream never ran the call: ExecuteTool from now on.
                self.calls = None
                calls.close()
        # Its deadline comes from its own timeout_ms, as on the call stream (the clients always set one).
        return self.unary(
            request.tool_id,
            self.stub.ExecuteTool,
            request,
            timeout_ms=deadline_ms(request.timeout_ms),
            default_deadline=False,
        )

    def stream_tool(self, request: pb.ToolStreamRequest) -> Generator[Any, None, None]:
        """Runs StreamTool and yields the decoded chunks; closing the generator early cancels the call.

        Errors as ``AioTransport.stream_tool``'s, the wait for each chunk bounded the same way.
        """
        tool_id = request.tool_id
        call = self.stub.StreamTool(
            request, timeout=deadline_s(request.timeout_ms), metadata=self._metadata()
        )
        watchdog = _IdleWatchdog(call, deadline_s(request.idle_timeout_ms))
        finished = False
        try:
            for chunk in _watched(call, watchdog):
                kind, value = chunk_content(chunk, request)
                if kind == "complete":
                    finished = True
                    return
                if kind == "data":
                    yield value
            finished = True
            raise stream_incomplete(tool_id)
        except grpc.RpcError as error:
            finished = True
            if watchdog.fired:
                raise timeout_error(tool_id, watchdog.idle_s) from None
            raise communication_error(tool_id, error) from error
        finally:
            watchdog.stop()
            if not finished:
                call.cancel()  # type: ignore[no-untyped-call]


def _watched(
    call: grpc.CallIterator[pb.ToolStreamChunk], watchdog: _IdleWatchdog
) -> Generator[pb.ToolStreamChunk, None, None]:
    """The stream's chunks, telling the watchdog when this waits for one."""
    chunks = iter(call)
    while True:
        watchdog.waiting()
        try:
            chunk = next(chunks)
        except StopIteration:
            return
        finally:
            watchdog.received()
        yield chunk


class _IdleWatchdog:
    """Cancels a stream that waits longer than ``idle_s`` for its next chunk (None: never).

    One thread per stream that sleeps until the earliest moment the wait could pass; time the
    consumer spends between chunks does not count.
    """

    def __init__(self, call: grpc.CallIterator[Any], idle_s: float | None) -> None:
        self.idle_s = idle_s
        self.fired = False
        self._call = call
        self._since: float | None = None
        self._stopped = threading.Event()
        if idle_s is not None:
            threading.Thread(target=self._watch, name="toolbridge-stream-idle", daemon=True).start()

    def waiting(self) -> None:
        self._since = time.monotonic()

    def received(self) -> None:
        self._since = None

    def stop(self) -> None:
        self._stopped.set()

    def _watch(self) -> None:
        assert self.idle_s is not None
        wait = self.idle_s
        while not self._stopped.wait(wait):
            since = self._since
            now = time.monotonic()
            if since is not None and now - since >= self.idle_s:
                self.fired = True
                self._call.cancel()  # type: ignore[no-untyped-call]
                return
            wait = self.idle_s if since is None else since + self.idle_s - now
