"""The transport over a ``grpc.aio`` channel: unary calls, tool calls and tool streams."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable
from typing import Any, Protocol, TypeVar

import grpc

from toolbridge.errors import ToolCommunicationError
from toolbridge.transport.channel import create_grpc_channel
from toolbridge.transport.credentials import TlsConfig
from toolbridge.transport.error_mapping import communication_error, error_from_info
from toolbridge.transport.messages import deadline_s
from toolbridge.v1 import toolbridge_pb2 as pb
from toolbridge.v1.toolbridge_pb2_grpc import ToolBridgeStub
from toolbridge.values import decode_value


class Answer(Protocol):
    """A response that reports a domain failure in-band: ``success`` false and an ``error``."""

    @property
    def success(self) -> bool: ...

    @property
    def error(self) -> pb.ErrorInfo: ...


R = TypeVar("R")
A = TypeVar("A", bound=Answer)


class AioTransport:
    """Calls to one host over a ``grpc.aio`` channel; every failure arrives as a ``ToolBridgeError``.

    It owns its channel unless one is passed in (e.g. from a ``ChannelPool``; then ``tls`` and
    ``token`` are the channel's business), and like every grpc.aio object it belongs to the
    event loop it was created on. ``stub`` is the generated
    stub, for RPCs this class has no method for.
    """

    def __init__(
        self,
        address: str,
        *,
        channel: grpc.aio.Channel | None = None,
        max_message_bytes: int | None = None,
        tls: TlsConfig | None = None,
        token: str | None = None,
    ) -> None:
        self.address = address
        self.owns_channel = channel is None
        self.channel = channel or create_grpc_channel(
            address, max_message_bytes=max_message_bytes, tls=tls, token=token
        )
        self.stub = ToolBridgeStub(self.channel)

    async def close(self) -> None:
        """Closes the channel if this transport created it."""
        if self.owns_channel:
            await self.channel.close(None)

    async def unary(self, what: str, call: Awaitable[R]) -> R:
        """Awaits a unary call; a transport failure raises ``ToolCommunicationError`` naming ``what``."""
        try:
            return await call
        except grpc.aio.AioRpcError as error:
            raise communication_error(what, error) from error

    async def checked(
        self, what: str, call: Awaitable[A], *, tool_name: str | None = None, session_id: str | None = None
    ) -> A:
        """``unary`` for responses with ``success``/``error``: an in-band error is raised as its class."""
        response = await self.unary(what, call)
        if not response.success:
            raise error_from_info(response.error, tool_name=tool_name, session_id=session_id)
        return response

    async def call_tool(self, request: pb.ToolCallRequest) -> Any:
        """Runs ExecuteTool and returns the decoded result; a failed call raises its ``ToolCallError``."""
        call = self.stub.ExecuteTool(request, timeout=deadline_s(request.timeout_ms))
        response = await self.checked(
            request.tool_id, call, tool_name=request.tool_id, session_id=request.session_id
        )
        return decode_value(response.result)

    async def stream_tool(self, request: pb.ToolStreamRequest) -> AsyncGenerator[Any, None]:
        """Runs StreamTool and yields the decoded chunks; closing the generator early cancels the call.

        The host's ``error`` chunk is raised as its ``ToolCallError``; a stream that ends without a
        ``complete`` chunk raises ``ToolCommunicationError``.
        """
        tool_id = request.tool_id
        call = self.stub.StreamTool(request, timeout=deadline_s(request.timeout_ms))
        finished = False
        try:
            async for chunk in call:
                kind = chunk.WhichOneof("content")
                if kind == "data":
                    yield decode_value(chunk.data)
                elif kind == "error":
                    finished = True
                    raise error_from_info(chunk.error, tool_name=tool_id, session_id=request.session_id)
                elif kind == "complete":
                    finished = True
                    return
            finished = True
            raise ToolCommunicationError(
                tool_id, grpc.StatusCode.UNKNOWN, "the stream ended without a complete chunk"
            )
        except grpc.aio.AioRpcError as error:
            finished = True
            raise communication_error(tool_id, error) from error
        finally:
            if not finished:
                call.cancel()
