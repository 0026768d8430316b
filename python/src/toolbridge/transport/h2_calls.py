"""The Calls stream as bytes in and bytes out: one HTTP/2 connection (the ``h2`` library's
state machine) carrying one ``ToolBridge/Calls`` stream, with gRPC's message framing on it.

No I/O: a transport feeds it what it read from the socket (``receive``) and writes what it
asks for (``data_to_send``), so the asyncio and the blocking transports share it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

import grpc
import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

from toolbridge.v1 import toolbridge_pb2 as pb

CALLS_PATH = b"/toolbridge.v1.ToolBridge/Calls"

#: What the host may send ahead of our reading, per stream and per connection. Large enough that
#: acknowledging it (a WINDOW_UPDATE frame) is rare; responses are bounded by the calls in flight.
RECEIVE_WINDOW = 16 * 1024 * 1024
_HEADER = 5

_STATUS_CODES = {code.value[0]: code for code in grpc.StatusCode}


@dataclass(frozen=True)
class StreamEnd:
    """How the Calls stream ended: the gRPC status the host sent, or why the connection broke.

    ``drained``: the host itself ended the stream with UNAVAILABLE in its trailers, which it
    does only when it shuts down, once it has answered every call it read from the stream
    (docs/errors.md, "Calls on the multiplexed call stream"). A call still without an answer
    then was never read by the host: it did not start, and may go on another stream.
    """

    code: grpc.StatusCode
    message: str
    drained: bool = False


#: How a stream ends when its client closes it: the calls still in flight fail with this.
CLIENT_CLOSED = StreamEnd(grpc.StatusCode.CANCELLED, "the client was closed")


class CallStreamEnded(Exception):
    """The stream (or its connection) ended before a call's response arrived; ``end`` says how."""

    def __init__(self, end: StreamEnd) -> None:
        super().__init__(end.message)
        self.end = end


class CallStreamConnection:
    """One HTTP/2 connection with one Calls stream on it (sans-IO).

    ``receive_window`` is how many bytes the host may send ahead of what was read (per stream
    and for the connection); it is acknowledged a quarter at a time.

    ``send_call`` and ``send_cancel`` queue frames, naming each call by a ``call_id`` the
    caller picks (not 0, unique among the calls in flight); gRPC bytes wait here while HTTP/2 flow
    control holds them (the host reads no more while its calls-per-stream limit is reached),
    so what waits is bounded by the calls the caller lets into flight. ``receive`` returns the
    responses in the bytes read; once the stream is over, ``ended`` says how.
    """

    def __init__(
        self,
        authority: str,
        *,
        max_message_bytes: int,
        metadata: Sequence[tuple[str, str]] = (),
        receive_window: int = RECEIVE_WINDOW,
    ) -> None:
        self.max_message_bytes = max_message_bytes
        self._ack_at = receive_window // 4
        self.ended: StreamEnd | None = None
        self._h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self._goaway = GoawayFilter()
        self._h2.initiate_connection()
        self._h2.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: receive_window})
        if receive_window > self._h2.inbound_flow_control_window:
            self._h2.increment_flow_control_window(receive_window - self._h2.inbound_flow_control_window)
        self._stream_id = self._h2.get_next_available_stream_id()
        headers = [
            (b":method", b"POST"),
            (b":scheme", b"http"),
            (b":path", CALLS_PATH),
            (b":authority", authority.encode()),
            (b"content-type", b"application/grpc"),
            (b"te", b"trailers"),
            *((key.encode(), value.encode()) for key, value in metadata),
        ]
        self._h2.send_headers(self._stream_id, headers)
        self._outgoing = bytearray()
        self._incoming = bytearray()
        self._unacknowledged = 0
        self._trailers: dict[bytes, bytes] = {}
        # A response status other than 200: whatever answered was not the host's gRPC server.
        self._http_refused = False

    @property
    def going_away(self) -> bool:
        """The host sent a graceful GOAWAY: the stream finishes its calls, new calls go elsewhere."""
        return self._goaway.seen

    # -- sending --------------------------------------------------------------------------

    def send_call(self, call_id: int, request: bytes, context: bytes = b"") -> None:
        """Queues the frame of call ``call_id``; ``request`` is a serialized ToolCallRequest.

        ``context``: the frame's trace context as ``frame_context`` encodes it (empty: none).
        """
        # The CallFrame's bytes as protobuf encodes them, without copying the request into a
        # message: call_id (field 1, varint), then call (field 2, length-delimited), then the
        # trace context's map entries (field 4), which protobuf reads in any order.
        self._queue(b"\x08" + _varint(call_id) + b"\x12" + _varint(len(request)) + request + context)

    def send_cancel(self, call_id: int) -> None:
        """Queues the cancellation of call ``call_id``."""
        self._queue(pb.CallFrame(call_id=call_id, cancel=pb.CancelCall()).SerializeToString())

    def data_to_send(self) -> bytes:
        """The bytes to write to the socket now (possibly none)."""
        self._flush()
        return self._h2.data_to_send()

    def _queue(self, message: bytes) -> None:
        # Framed here, sent in data_to_send: the calls queued meanwhile share HTTP/2 DATA frames.
        self._outgoing += b"\x00" + len(message).to_bytes(4, "big") + message

    def _flush(self) -> None:
        """Hands HTTP/2 as much of the queued bytes as flow control allows now."""
        if self.ended is not None:
            return
        connection, stream_id, outgoing = self._h2, self._stream_id, self._outgoing
        while outgoing:
            size = min(
                len(outgoing),
                connection.local_flow_control_window(stream_id),
                connection.max_outbound_frame_size,
            )
            if size <= 0:
                return
            connection.send_data(stream_id, bytes(outgoing[:size]))
            del outgoing[:size]

    # -- receiving ------------------------------------------------------------------------

    def receive(self, data: bytes) -> list[pb.CallAnswer]:
        """Takes bytes read from the socket; returns the answers they completed.

        Afterwards ``data_to_send`` may hold acknowledgements, and ``ended`` is set when the
        stream or the connection is over (the host's status, or a protocol error).
        """
        if not data:
            self._end(grpc.StatusCode.UNAVAILABLE, "the host closed the connection")
            return []
        try:
            events = self._h2.receive_data(self._goaway.strip(data))
        except h2.exceptions.ProtocolError as error:
            self._end(grpc.StatusCode.INTERNAL, f"HTTP/2 protocol error from the host: {error}")
            return []
        responses: list[pb.CallAnswer] = []
        for event in events:
            if isinstance(event, h2.events.DataReceived) and event.stream_id == self._stream_id:
                self._incoming += event.data
                self._unacknowledged += event.flow_controlled_length
                self._parse(responses)
            elif isinstance(event, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                self._read_headers(event.headers)
            elif isinstance(event, h2.events.StreamEnded):
                self._end_with_trailers()
            elif isinstance(event, h2.events.StreamReset):
                self._end(
                    grpc.StatusCode.UNAVAILABLE, f"the host reset the call stream (code {event.error_code})"
                )
            elif isinstance(event, h2.events.ConnectionTerminated):
                self._end(grpc.StatusCode.UNAVAILABLE, "the host closed the connection (GOAWAY)")
            elif isinstance(event, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
                self._flush()
        if self._unacknowledged >= self._ack_at and self.ended is None:
            self._h2.acknowledge_received_data(self._unacknowledged, self._stream_id)
            self._unacknowledged = 0
        return responses

    def _parse(self, responses: list[pb.CallAnswer]) -> None:
        buffer = self._incoming
        start = 0
        while len(buffer) - start >= _HEADER:
            size = int.from_bytes(buffer[start + 1 : start + _HEADER], "big")
            if buffer[start] != 0:
                self._end(
                    grpc.StatusCode.INTERNAL, "the host sent a compressed message, which was not asked for"
                )
                return
            if size > self.max_message_bytes:
                self._end(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"the host sent a {size}-byte message, "
                    f"over this client's limit of {self.max_message_bytes}",
                )
                return
            end = start + _HEADER + size
            if len(buffer) < end:
                break
            responses.append(pb.CallAnswer.FromString(bytes(buffer[start + _HEADER : end])))
            start = end
        del buffer[:start]

    def _read_headers(self, headers: Sequence[tuple[bytes, bytes]]) -> None:
        for key, value in headers:
            if key == b":status" and value != b"200":
                self._http_refused = True
                self._trailers.setdefault(b"grpc-status", str(grpc.StatusCode.UNAVAILABLE.value[0]).encode())
                self._trailers.setdefault(b"grpc-message", b"HTTP status " + value)
            elif key in (b"grpc-status", b"grpc-message"):
                self._trailers[key] = value

    def _end_with_trailers(self) -> None:
        raw = self._trailers.get(b"grpc-status")
        code = _STATUS_CODES.get(int(raw)) if raw is not None and raw.isdigit() else None
        message = unquote(self._trailers.get(b"grpc-message", b"").decode(errors="replace"))
        if code is None:
            code, message = grpc.StatusCode.UNKNOWN, message or "the call stream ended without a status"
        self._end(code, message, drained=code == grpc.StatusCode.UNAVAILABLE and not self._http_refused)

    def _end(self, code: grpc.StatusCode, message: str, *, drained: bool = False) -> None:
        if self.ended is None:
            self.ended = StreamEnd(code, message, drained)
            self._outgoing.clear()


_FRAME_HEADER = 9
_GOAWAY = 0x7


class GoawayFilter:
    """Takes graceful GOAWAY frames out of the bytes read, before h2 sees them.

    h2 closes the whole connection on any GOAWAY, but HTTP/2 lets the streams the peer already
    accepted run to their end, and a host shutting down sends GOAWAY (error code 0) before the
    last responses of its call streams: dropping them would fail calls that succeeded. Other
    frames pass through untouched; a GOAWAY with an error code too.
    """

    def __init__(self) -> None:
        self.seen = False
        self._held = b""  # the start of a frame header, or of a GOAWAY frame, not passed on yet
        self._rest = 0  # bytes of the current frame still to come, already passed on

    def strip(self, data: bytes) -> bytes:
        if self._held:
            data, self._held = self._held + data, b""
        position = self._rest
        if position >= len(data):
            self._rest -= len(data)
            return data
        kept: list[bytes] = []
        start = 0
        while True:
            if len(data) - position < _FRAME_HEADER:
                self._held, self._rest = data[position:], 0
                kept.append(data[start:position])
                break
            end = position + _FRAME_HEADER + int.from_bytes(data[position : position + 3], "big")
            if data[position + 3] == _GOAWAY:
                if end > len(data):
                    self._held, self._rest = data[position:], 0
                    kept.append(data[start:position])
                    break
                # Payload: last stream id (4 bytes), then the error code (4 bytes).
                if int.from_bytes(data[position + 13 : position + 17], "big") == 0:
                    self.seen = True
                    kept.append(data[start:position])
                    start = end
            if end >= len(data):
                self._rest = end - len(data)
                kept.append(data[start:])
                break
            position = end
        return b"".join(kept) if len(kept) != 1 else kept[0]


def frame_context(carrier: Mapping[str, str]) -> bytes:
    """A call's W3C trace context as the bytes of CallFrame's ``trace_context`` field, for ``send_call``."""
    return pb.CallFrame(trace_context=carrier).SerializeToString()


def _varint(value: int) -> bytes:
    """``value`` as a protobuf varint."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
