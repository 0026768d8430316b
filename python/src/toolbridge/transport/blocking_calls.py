"""The Calls stream on a blocking socket: tool calls from any thread, without an event loop
(``BlockingCallStream``)."""

from __future__ import annotations

import itertools
import os
import select
import socket
import threading
import time
from collections.abc import Sequence

import grpc

from toolbridge.core.config import TOOL_BRIDGE_CONFIG
from toolbridge.transport.address import SocketAddress
from toolbridge.transport.h2_calls import CLIENT_CLOSED, CallStreamConnection, CallStreamEnded, StreamEnd
from toolbridge.v1 import toolbridge_pb2 as pb

_READ_BYTES = 256 * 1024
#: Most reads taking in what a connection holds before a call is written on it (4 MiB).
_CATCH_UP_READS = 16
#: After a spin that ended without data (a tool slower than the spin), this many waits block
#: at once, so that the calls of a slow tool do not each burn a spin.
SPIN_BACKOFF = 16


def spin_budget() -> float:
    """How long the reading caller polls the socket without sleeping before it blocks in poll().

    A small call's answer comes 40-60 µs after its request when neither side sleeps; going to
    sleep and being woken for it costs about as much again (more on a virtual machine, where an
    idle CPU halts), on the client and, through the write that wakes it, on the host. So:
    ``TOOL_BRIDGE_CONFIG["blocking_spin_us"]`` when this process may run on more than one CPU;
    0 (never spin) on one, where spinning would only keep the CPU from the host that is to answer.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    spin_us = max(0.0, float(TOOL_BRIDGE_CONFIG["blocking_spin_us"]))
    return spin_us / 1e6 if cpus > 1 else 0.0


class SpinWait:
    """The moment a reader polls its socket without sleeping before it blocks on it.

    ``wait`` polls for up to ``budget_s`` (not past the deadline) and says whether data came;
    one that misses turns spinning off for the next ``SPIN_BACKOFF`` waits. A budget of 0
    never spins. One reader at a time.
    """

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        self._skip = 0

    def wait(self, poll: select.poll, deadline: float | None) -> bool:
        if self.budget_s == 0.0:
            return False
        if self._skip > 0:
            self._skip -= 1
            return False
        end = time.monotonic() + self.budget_s
        if deadline is not None:
            end = min(end, deadline)
        while not poll.poll(0):
            if time.monotonic() >= end:
                self._skip = SPIN_BACKOFF
                return False
        return True


class _Waiter:
    __slots__ = ("abandoned", "response")

    def __init__(self) -> None:
        self.response: pb.ToolCallResponse | None = None
        self.abandoned = False


class BlockingCallStream:
    """Tool calls on a Calls stream to one host, from any number of threads.

    No thread of its own: a caller waiting for its response reads the socket for everyone
    while no other caller does (and hands each response to its caller), so a single thread
    making one call at a time costs one write and one read per call; the reader polls for a
    moment (``SpinWait``) before it sleeps until the answer comes. The connection opens on
    first use and again after the stream ended. At most ``max_in_flight`` calls are in flight;
    more wait for a slot, which counts against their timeout.

    A call is never written onto a connection whose end has already arrived, as on the asyncio
    stream: nobody reads a connection with no call in flight, so what the host sent meanwhile
    (the end of a stream it closed: a restart, an idle connection it dropped) is taken in
    first, and the call goes on a new connection.
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
        # Guards everything below; waiting callers sleep on it until their response is in.
        self._lock = threading.Condition()
        self._socket: socket.socket | None = None
        self._poll = select.poll()
        # The same socket for the check before a write, made under the lock while a reader may
        # be waiting in _poll (one poll object cannot be waited on by two threads at once).
        self._unread = select.poll()
        self._state: CallStreamConnection | None = None
        #: The calls waiting for their answers, by call id.
        self._waiters: dict[int, _Waiter] = {}
        self._call_ids = itertools.count(1)
        self._reading = False
        #: Reads delivered so far: what a caller waits on for another caller's read to finish.
        self._reads = 0
        self._closed = False
        self._spin = SpinWait(spin_budget())

    @property
    def connected(self) -> bool:
        """True while a connection with an open call stream exists."""
        with self._lock:
            return self._state is not None and self._state.ended is None

    @property
    def going_away(self) -> bool:
        """True while the host's GOAWAY lets the stream finish its calls: new ones go elsewhere."""
        state = self._state
        return state is not None and state.ended is None and state.going_away

    def call(self, request: bytes, timeout_s: float | None, context: bytes = b"") -> pb.ToolCallResponse:
        """Sends the call (``request``: a serialized ToolCallRequest) and waits for its response.

        ``context`` is its trace context, encoded by ``frame_context`` (empty: none).

        Raises ``TimeoutError`` after ``timeout_s`` (the call is then cancelled on the host),
        ``CallStreamEnded`` when the stream ends first, ``OSError`` when the host cannot be reached.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        waiter = _Waiter()
        with self._lock:
            state = self._ready_connection(deadline)
            call_id = next(self._call_ids)
            self._waiters[call_id] = waiter
            state.send_call(call_id, request, context)
            self._write(state)
        try:
            return self._wait(waiter, call_id, deadline)
        except BaseException:
            # Timed out or interrupted: the host cancels the call; the slot is free once it answers.
            with self._lock:
                waiter.abandoned = True
                current = self._state
                if call_id in self._waiters and current is not None and current.ended is None:
                    current.send_cancel(call_id)
                    self._write(current)
            raise

    def close(self) -> None:
        """Ends the stream; calls still in flight fail with ``CallStreamEnded`` (CANCELLED)."""
        with self._lock:
            self._closed = True
            self._end(CLIENT_CLOSED)

    # -- internals (under the lock unless said otherwise) -----------------------------------

    def _ready_connection(self, deadline: float | None) -> CallStreamConnection:
        """A free slot (a call holds its entry in ``_waiters`` until the host answers it) and a
        connection whose end has not arrived: what the socket holds is taken in first.

        Bytes there are read here, or, while another caller is reading, by that caller's read,
        which this waits for once (the lock is released meanwhile, so everything is checked
        again). One poll that does not wait (a few µs) when nothing is there.
        """
        waited = False
        while True:
            while len(self._waiters) >= self.max_in_flight:
                if not self._lock.wait(_remaining(deadline)):
                    raise TimeoutError()
            state = self._state
            if state is not None and state.ended is None and self._unread.poll(0):
                if not self._reading:
                    self._catch_up(state)
                elif not waited:
                    waited = True
                    self._wait_for_read(deadline)
                    continue
            if state is not None and state.ended is None:
                return state
            return self._connect()

    def _connect(self) -> CallStreamConnection:
        if self._closed:
            raise CallStreamEnded(CLIENT_CLOSED)
        address = self.address
        if address.family == socket.AF_UNIX:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(address.path)
            except BaseException:
                sock.close()
                raise
        else:
            sock = socket.create_connection((address.host, address.port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        state = CallStreamConnection(
            address.authority, max_message_bytes=self.max_message_bytes, metadata=self.metadata
        )
        # A blocking socket, waited on with poll: a socket timeout would cost a system call per read.
        self._poll, self._unread = select.poll(), select.poll()
        self._poll.register(sock, select.POLLIN)
        self._unread.register(sock, select.POLLIN)
        self._socket, self._state = sock, state
        return state

    def _write(self, state: CallStreamConnection) -> None:
        data = state.data_to_send()
        sock = self._socket
        if not data or sock is None:
            return
        try:
            sock.sendall(data)
        except OSError as error:
            self._end(StreamEnd(grpc.StatusCode.UNAVAILABLE, f"the connection to the host was lost: {error}"))

    def _wait(self, waiter: _Waiter, call_id: int, deadline: float | None) -> pb.ToolCallResponse:
        """Waits for the response, reading the socket whenever no other caller does (not under the lock)."""
        lock = self._lock
        while True:
            with lock:
                while waiter.response is None and self._reading and call_id in self._waiters:
                    if not lock.wait(_remaining(deadline)):
                        raise TimeoutError()
                if waiter.response is not None:
                    return waiter.response
                state, sock = self._state, self._socket
                if call_id not in self._waiters or state is None or sock is None or state.ended:
                    raise CallStreamEnded(
                        state.ended
                        if state is not None and state.ended is not None
                        else StreamEnd(grpc.StatusCode.UNAVAILABLE, "the call stream ended")
                    )
                self._reading = True
                poll = self._poll
            data: bytes | None = None
            try:
                data = self._read(sock, poll, deadline)
            finally:
                with lock:
                    self._reading = False
                    self._reads += 1
                    if data is not None and self._state is state:
                        self._deliver(state, data)
                    lock.notify_all()

    def _catch_up(self, state: CallStreamConnection) -> None:
        """Reads what the socket holds, while no caller is reading it.

        Nobody reads a connection with no call in flight, so the end of a stream the host
        closed meanwhile (a restart, an idle connection it dropped) waits here unread, often
        behind frames sent before it (GOAWAY, pings); reading up to it ends the stream, and
        also answers the host's keepalive pings.
        """
        sock = self._socket
        for _ in range(_CATCH_UP_READS):
            if sock is None or state.ended is not None or not self._unread.poll(0):
                break
            try:
                data = sock.recv(_READ_BYTES)
            except OSError:
                data = b""  # as a closed connection: the stream ends
            self._deliver(state, data)
        self._lock.notify_all()  # callers whose answers came in

    def _wait_for_read(self, deadline: float | None) -> None:
        """Waits until the caller reading the socket has delivered what it read."""
        reads = self._reads
        while self._reading and self._reads == reads:
            if not self._lock.wait(_remaining(deadline)):
                raise TimeoutError()

    def _read(self, sock: socket.socket, poll: select.poll, deadline: float | None) -> bytes:
        """One read from the socket (not under the lock); ``TimeoutError`` when the deadline passes first."""
        if not self._spin.wait(poll, deadline):
            remaining = _remaining(deadline)
            if not poll.poll(None if remaining is None else remaining * 1000):
                raise TimeoutError()
        try:
            data = sock.recv(_READ_BYTES)
        except OSError:
            data = b""  # as a closed connection: the stream ends
        return data

    def _deliver(self, state: CallStreamConnection, data: bytes) -> None:
        for answer in state.receive(data):
            waiter = self._waiters.pop(answer.call_id, None)
            if waiter is None:
                continue
            if not waiter.abandoned:
                waiter.response = answer.response
        self._write(state)
        if state.ended is not None:
            self._end(state.ended)

    def _end(self, end: StreamEnd) -> None:
        """Fails every call still waiting and closes the connection."""
        state, sock = self._state, self._socket
        if state is not None and state.ended is None:
            state.ended = end
        self._waiters.clear()
        self._socket = None
        if sock is not None:
            sock.close()
        self._lock.notify_all()


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())
