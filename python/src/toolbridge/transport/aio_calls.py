"""The Calls stream on asyncio: many tool calls in flight on one HTTP/2 stream, each awaiting
its own response (``AioCallStream``)."""

from __future__ import annotations

import asyncio
import fcntl
import itertools
import select
import socket
import struct
import termios
from collections.abc import Sequence

import grpc

from toolbridge.transport.address import SocketAddress
from toolbridge.transport.h2_calls import CLIENT_CLOSED, CallStreamConnection, CallStreamEnded, StreamEnd
from toolbridge.v1 import toolbridge_pb2 as pb


class AioCallStream:
    """Tool calls on a Calls stream to one host, opened on first use and again after it ends.

    At most ``max_in_flight`` calls are in flight (a call counts until the host answers it, also
    after its caller gave up); more wait for a slot, which counts against their timeout. Like
    every asyncio object it belongs to the event loop that first used it.

    A call is never written onto a connection whose end has already arrived: what the host
    sent that the loop has not handed over yet (it was blocked when it came) is taken in
    first, so a stream the host ended meanwhile (a restart) is replaced before the call goes
    out. A call written just before the host's end arrived is sent again on a new stream only
    when that end proves the host never read it (``StreamEnd.drained``).
    """

    def __init__(
        self,
        address: SocketAddress,
        *,
        max_message_bytes: int,
        max_in_flight: int,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.address = address
        self.max_message_bytes = max_message_bytes
        self.metadata = tuple(metadata)
        self.max_in_flight = max_in_flight
        self._slots = asyncio.Semaphore(max_in_flight)
        self._connection: _Connection | None = None
        self._connecting: asyncio.Lock | None = None
        self._closed = False

    @property
    def connected(self) -> bool:
        """True while a connection with an open call stream exists."""
        connection = self._connection
        return connection is not None and connection.state.ended is None

    @property
    def going_away(self) -> bool:
        """True while the host's GOAWAY lets the stream finish its calls: new ones go elsewhere."""
        connection = self._connection
        return connection is not None and connection.state.ended is None and connection.state.going_away

    @property
    def in_flight(self) -> int:
        """Calls sent on the current connection and not answered yet (given up ones included)."""
        connection = self._connection
        return 0 if connection is None else len(connection.pending)

    async def call(
        self, request: bytes, timeout_s: float | None, context: bytes = b""
    ) -> pb.ToolCallResponse:
        """Sends the call (``request``: a serialized ToolCallRequest) and waits for its response.

        ``context`` is its trace context, encoded by ``frame_context`` (empty: none).

        Raises ``TimeoutError`` after ``timeout_s`` (the call is then cancelled on the host),
        ``CallStreamEnded`` when the stream ends first, ``OSError`` when the host cannot be
        reached. Cancelling the awaiting task cancels the call on the host.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        try:
            return await self._send(request, loop, deadline, context)
        except CallStreamEnded as error:
            if not error.end.drained:
                raise
        # The host drained the stream without reading the call, so it never ran: once more on a
        # new stream (a second drain means the host is going away, and the call fails with it).
        return await self._send(request, loop, deadline, context)

    async def _send(
        self, request: bytes, loop: asyncio.AbstractEventLoop, deadline: float | None, context: bytes
    ) -> pb.ToolCallResponse:
        """One try: a slot, a connection whose end has not arrived, the call written, its answer."""
        if self._slots.locked():
            async with asyncio.timeout_at(deadline):
                await self._slots.acquire()
        else:
            await self._slots.acquire()  # returns at once: no timer needed
        try:
            connection = self._connection
            # Only an idle connection can hold an end nobody read (a busy one is being read, and
            # the calls on it learn of the end): checking on every call would cost each a wait.
            if connection is not None and connection.idle() and connection.unread():
                async with asyncio.timeout_at(deadline):
                    await connection.catch_up()
            if connection is None or connection.state.ended is not None:
                async with asyncio.timeout_at(deadline):
                    connection = await self._connect()
        except BaseException:
            self._slots.release()
            raise
        future: asyncio.Future[pb.ToolCallResponse] = loop.create_future()
        call_id = connection.start(request, future, context)
        timer = None if deadline is None else loop.call_at(deadline, connection.expire, call_id)
        try:
            return await future
        except asyncio.CancelledError:
            connection.cancel(call_id)
            raise
        finally:
            if timer is not None:
                timer.cancel()

    async def close(self) -> None:
        """Ends the stream; calls still in flight fail with ``CallStreamEnded`` (CANCELLED)."""
        self._closed = True
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close(CLIENT_CLOSED)

    async def _connect(self) -> _Connection:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            connection = self._connection
            if connection is not None and connection.state.ended is None:
                return connection
            if self._closed:
                raise CallStreamEnded(CLIENT_CLOSED)
            loop = asyncio.get_running_loop()
            state = CallStreamConnection(
                self.address.authority, max_message_bytes=self.max_message_bytes, metadata=self.metadata
            )
            address = self.address
            if address.family == socket.AF_UNIX:
                _, protocol = await loop.create_unix_connection(
                    lambda: _Connection(state, self._slots), address.path
                )
            else:
                _, protocol = await loop.create_connection(
                    lambda: _Connection(state, self._slots), address.host, address.port
                )
            self._connection = protocol
            return protocol


class _Connection(asyncio.Protocol):
    """One connection's calls: the futures waiting for responses, by request id."""

    def __init__(self, state: CallStreamConnection, slots: asyncio.Semaphore) -> None:
        self.state = state
        #: The calls waiting for their answers, by call id.
        self.pending: dict[int, asyncio.Future[pb.ToolCallResponse]] = {}
        #: Bytes handed to this protocol so far.
        self.received = 0
        self._call_ids = itertools.count(1)
        self._slots = slots
        self._transport: asyncio.Transport | None = None
        self._flush_scheduled = False
        self._socket_fd = -1
        self._readable = select.poll()
        # Resolved at the next bytes received or at the end: what catch_up waits on.
        self._progress: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._socket_fd = transport.get_extra_info("socket").fileno()
        self._readable.register(self._socket_fd, select.POLLIN)
        transport.write(self.state.data_to_send())

    def idle(self) -> bool:
        """No call in flight and no end seen: nothing has read this connection lately."""
        return not self.pending and self.state.ended is None

    def unread(self) -> bool:
        """Whether the socket holds something the loop has not handed over: bytes, or its end."""
        return self._socket_fd >= 0 and bool(self._readable.poll(0))

    async def catch_up(self) -> None:
        """Waits until the loop has handed over what the socket held when called (``unread``).

        The loop reads a readable socket at its next turn; it may take several reads, so the
        wait is for as many bytes as the socket held (none: only its end, or an error, is there).
        """
        held = _unread_bytes(self._socket_fd)
        target = self.received + held
        while self.state.ended is None and (held == 0 or self.received < target):
            if self._progress is None:
                self._progress = asyncio.get_running_loop().create_future()
            await self._progress

    def _progressed(self) -> None:
        progress, self._progress = self._progress, None
        if progress is not None and not progress.done():
            progress.set_result(None)

    def start(self, request: bytes, future: asyncio.Future[pb.ToolCallResponse], context: bytes = b"") -> int:
        """Sends the call (with its encoded trace ``context``); returns its call id."""
        call_id = next(self._call_ids)
        if self.state.ended is not None:
            self._slots.release()
            future.set_exception(CallStreamEnded(self.state.ended))
            return call_id
        self.pending[call_id] = future
        self.state.send_call(call_id, request, context)
        if len(self.pending) == 1:
            # The only call in flight (one caller at a time): no other call could share its write.
            self._flush()
        else:
            self._schedule_flush()
        return call_id

    def cancel(self, call_id: int) -> None:
        """The caller gave up: the host cancels the call; its slot is free once the host answers."""
        if call_id in self.pending and self.state.ended is None:
            self.state.send_cancel(call_id)
            self._schedule_flush()

    def expire(self, call_id: int) -> None:
        future = self.pending.get(call_id)
        if future is not None and not future.done():
            future.set_exception(TimeoutError())
            self.cancel(call_id)

    def _schedule_flush(self) -> None:
        # Calls started in one turn of the loop go out in one write.
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        data = self.state.data_to_send()
        if data and self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        if self._progress is not None:
            self._progressed()
        responses = self.state.receive(data)
        pending, release = self.pending, self._slots.release
        for answer in responses:
            future = pending.pop(answer.call_id, None)
            if future is None:
                continue
            release()
            if not future.done():
                future.set_result(answer.response)
        ended = self.state.ended
        if ended is not None:
            self.close(ended)
            return
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f": {exc}" if exc is not None else ""
        self.close(StreamEnd(grpc.StatusCode.UNAVAILABLE, f"the connection to the host was lost{reason}"))

    def close(self, end: StreamEnd) -> None:
        """Fails every call still waiting with ``end`` and closes the connection."""
        if self.state.ended is None:
            self.state.ended = end
        self._socket_fd = -1  # closed below: its number may be reused
        self._progressed()
        pending, self.pending = self.pending, {}
        for future in pending.values():
            self._slots.release()
            if not future.done():
                future.set_exception(CallStreamEnded(self.state.ended))
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()


def _unread_bytes(fd: int) -> int:
    """How many bytes the socket ``fd`` holds unread (FIONREAD)."""
    try:
        held = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
    except OSError:
        return 0
    count: int = struct.unpack("i", held)[0]
    return count
