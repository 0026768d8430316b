"""The asyncio transport: tool calls on the Calls stream (``h2``), everything else over ``grpc.aio``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any, TypeVar

import grpc

from toolbridge.core.config import TOOL_BRIDGE_CONFIG
from toolbridge.core.tracing import outgoing_context, outgoing_metadata
from toolbridge.transport.aio_calls import AioCallStream
from toolbridge.transport.channel import create_grpc_channel, open_call_stream
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


class AioTransport:
    """Calls to one host; every failure arrives as a ``ToolBridgeError``.

    Tool calls go on one multiplexed Calls stream (``AioCallStream``, on the ``h2`` library),
    each waiting for its own response; a call whose request is over
    ``multiplex_max_request_bytes`` goes through ExecuteTool instead, so a large payload does
    not hold up the small calls behind it. Every other RPC, tool streams included, goes over a
    ``grpc.aio`` channel. With ``multiplex=False``, with ``tls`` (the stream is plaintext
    only), with a channel passed in (e.g. from a ``ChannelPool``, which owns it; then ``tls``
    and ``token`` are the channel's business), or for an address the stream cannot dial,
    tool calls use ExecuteTool on the channel. ``token`` goes with the stream's calls too.
    Every other unary RPC without a timeout of its own gets ``default_timeout_ms`` (see
    ``unary``). Like every asyncio object it belongs to the event loop it was created on.
    ``stub`` is the generated stub, for RPCs this class has no method for.
    """

    def __init__(
        self,
        address: str,
        *,
        channel: grpc.aio.Channel | None = None,
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
        self.channel = channel or create_grpc_channel(
            address, max_message_bytes=max_message_bytes, tls=tls, token=token
        )
        self.stub = ToolBridgeStub(self.channel)
        #: The multiplexed call stream, or None when tool calls use ExecuteTool.
        self.calls = open_call_stream(
            AioCallStream,
            address,
            multiplex=multiplex,
            channel_given=channel is not None,
            tls=tls,
            max_message_bytes=max_message_bytes,
            max_calls_per_stream=max_calls_per_stream,
            metadata=token_metadata(token),
        )
        self._multiplex_max_bytes = int(TOOL_BRIDGE_CONFIG["multiplex_max_request_bytes"])

    async def close(self) -> None:
        """Ends the call stream, and closes the channel if this transport created it."""
        if self.calls is not None:
            await self.calls.close()
        if self.owns_channel:
            await self.channel.close(None)

    async def unary(
        self,
        what: str,
        method: grpc.aio.UnaryUnaryMultiCallable[Q, R],
        request: Q,
        *,
        timeout_ms: float | None = None,
        default_deadline: bool = True,
    ) -> R:
        """Calls a unary RPC; a transport failure raises ``ToolCommunicationError`` naming ``what``.

        Its deadline is ``timeout_ms``; without one, ``default_timeout_ms`` unless
        ``default_deadline`` is false (a call that may legitimately run long, e.g. a batch
        with no timeout). A call past its deadline fails with ``DEADLINE_EXCEEDED``: a host that
        stops answering (or cannot be reached at all) does not hang its caller.
        """
        default_timeout_ms = self.default_timeout_ms if timeout_ms is None and default_deadline else None
        limit_ms = timeout_ms if default_timeout_ms is None else default_timeout_ms
        timeout_s = None if limit_ms is None else limit_ms / 1000
        try:
            return await method(request, timeout=timeout_s, metadata=outgoing_metadata())
        except grpc.aio.AioRpcError as error:
            raise communication_error(what, error, default_timeout_ms=default_timeout_ms) from error

    async def checked(
        self,
        what: str,
        method: grpc.aio.UnaryUnaryMultiCallable[Q, A],
        request: Q,
        *,
        timeout_ms: float | None = None,
        default_deadline: bool = True,
        session_id: str | None = None,
    ) -> A:
        """``unary`` for responses with ``success``/``error``: an in-band error is raised as its class."""
        response = await self.unary(
            what, method, request, timeout_ms=timeout_ms, default_deadline=default_deadline
        )
        return succeeded(response, session_id=session_id)

    async def call_tool(self, request: pb.ToolCallRequest) -> Any:
        """Runs the call and returns the decoded result; a failed call raises its ``ToolCallError``.

        Its deadline is ``timeout_ms`` plus the usual slack; past it the call is cancelled and
        raises ``ToolCommunicationError`` with ``DEADLINE_EXCEEDED``.
        """
        return tool_result(request, await self.execute(request))

    async def execute(self, request: pb.ToolCallRequest) -> pb.ToolCallResponse:
        """The call's ToolCallResponse, from the call stream or from ExecuteTool."""
        timeout_s = deadline_s(request.timeout_ms)
        calls = self.calls
        payload = request.SerializeToString() if calls is not None else b""
        if calls is not None and takes_call(calls, payload, self._multiplex_max_bytes):
            carrier = outgoing_context()
            context = b"" if carrier is None else frame_context(carrier)
            try:
                return stream_answer(request.tool_id, await calls.call(payload, timeout_s, context))
            except (TimeoutError, CallStreamEnded, OSError) as error:
                failure = stream_failure(request.tool_id, error, timeout_s, self.address)
                if failure is not None:
                    raise failure from error
                # A host without the call stream never ran the call: ExecuteTool from now on.
                self.calls = None
                await calls.close()
        # Its deadline comes from its own timeout_ms, as on the call stream (the clients always set one).
        return await self.unary(
            request.tool_id,
            self.stub.ExecuteTool,
            request,
            timeout_ms=deadline_ms(request.timeout_ms),
            default_deadline=False,
        )

    async def stream_tool(self, request: pb.ToolStreamRequest) -> AsyncGenerator[Any, None]:
        """Runs StreamTool and yields the decoded chunks; closing the generator early cancels the call.

        The host's ``error`` chunk is raised as its ``ToolCallError``; a stream that ends without a
        ``complete`` chunk raises ``ToolCommunicationError``, as does a wait for the next chunk
        longer than ``idle_timeout_ms`` plus the usual slack (``DEADLINE_EXCEEDED``; the host's own
        idle timeout normally ends the stream first).
        """
        tool_id = request.tool_id
        call = self.stub.StreamTool(
            request, timeout=deadline_s(request.timeout_ms), metadata=outgoing_metadata()
        )
        watchdog = _IdleWatchdog(call, deadline_s(request.idle_timeout_ms))
        finished = False
        try:
            while True:
                watchdog.waiting()
                chunk = await call.read()
                watchdog.received()
                if not isinstance(chunk, pb.ToolStreamChunk):  # grpc.aio.EOF: the stream ended
                    break
                kind, value = chunk_content(chunk, request)
                if kind == "complete":
                    finished = True
                    return
                if kind == "data":
                    yield value
            finished = True
            raise stream_incomplete(tool_id)
        except grpc.aio.AioRpcError as error:
            finished = True
            raise communication_error(tool_id, error) from error
        except asyncio.CancelledError:
            if not watchdog.fired:
                raise
            finished = True
            raise timeout_error(tool_id, watchdog.idle_s) from None
        finally:
            watchdog.stop()
            if not finished:
                call.cancel()


class _IdleWatchdog:
    """Cancels a stream that waits longer than ``idle_s`` for its next chunk (None: never).

    One timer for the whole stream, moved on only when it fires: cheaper than a timeout per chunk.
    Time the consumer spends between chunks does not count.
    """

    def __init__(self, call: grpc.aio.UnaryStreamCall[Any, Any], idle_s: float | None) -> None:
        self.call = call
        self.idle_s = idle_s
        self.fired = False
        self._loop = asyncio.get_running_loop()
        self._since: float | None = None
        self._timer = None if idle_s is None else self._loop.call_later(idle_s, self._check)

    def waiting(self) -> None:
        self._since = self._loop.time()

    def received(self) -> None:
        self._since = None

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _check(self) -> None:
        assert self.idle_s is not None
        now = self._loop.time()
        due = (now if self._since is None else self._since) + self.idle_s
        if now >= due:
            self.fired = True
            self.call.cancel()
        else:
            self._timer = self._loop.call_at(due, self._check)
