"""gRPC channels and Calls streams to a toolbridge host, with the settings the host expects."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

import grpc

from toolbridge.core import config
from toolbridge.transport.address import SocketAddress, parse_address
from toolbridge.transport.credentials import TlsConfig, token_interceptors

S = TypeVar("S", covariant=True)


def message_limit(max_message_bytes: int | None = None) -> int:
    """The largest message sent or received: ``max_message_bytes``, else ``GRPC_CONFIG``'s."""
    return max_message_bytes if max_message_bytes is not None else config.max_message_bytes()


def channel_options(
    max_message_bytes: int | None = None, extra: Sequence[tuple[str, Any]] = ()
) -> list[tuple[str, Any]]:
    """The channel options of ``GRPC_CONFIG`` (message limit, keepalive), then ``extra``."""
    size = message_limit(max_message_bytes)
    return [
        ("grpc.max_receive_message_length", size),
        ("grpc.max_send_message_length", size),
        ("grpc.keepalive_time_ms", config.GRPC_CONFIG["keepalive_time_ms"]),
        ("grpc.keepalive_timeout_ms", config.GRPC_CONFIG["keepalive_timeout_ms"]),
        *extra,
    ]


def create_grpc_channel(
    address: str,
    *,
    max_message_bytes: int | None = None,
    options: Sequence[tuple[str, Any]] = (),
    credentials: grpc.ChannelCredentials | None = None,
    tls: TlsConfig | None = None,
    token: str | None = None,
) -> grpc.aio.Channel:
    """An asyncio channel to a toolbridge host with the default settings.

    Plaintext unless ``tls`` (or raw gRPC ``credentials``) is given; with ``token`` every call
    carries ``authorization: Bearer <token>``.
    """
    extra = [*(tls.channel_options() if tls is not None else ()), *options]
    opts = channel_options(max_message_bytes, extra)
    interceptors = token_interceptors(token)
    if tls is not None:
        credentials = tls.channel_credentials()
    if credentials is not None:
        return grpc.aio.secure_channel(address, credentials, options=opts, interceptors=interceptors)
    return grpc.aio.insecure_channel(address, options=opts, interceptors=interceptors)


def create_blocking_channel(
    address: str,
    *,
    max_message_bytes: int | None = None,
    options: Sequence[tuple[str, Any]] = (),
    tls: TlsConfig | None = None,
) -> grpc.Channel:
    """``create_grpc_channel`` for blocking code: a ``grpc.Channel`` with the same settings.

    A token is not the channel's business here: ``SyncTransport`` sends it with every call.
    """
    extra = [*(tls.channel_options() if tls is not None else ()), *options]
    opts = channel_options(max_message_bytes, extra)
    if tls is not None:
        return grpc.secure_channel(address, tls.channel_credentials(), options=opts)
    return grpc.insecure_channel(address, options=opts)


class CallStreamClass(Protocol[S]):
    """How ``open_call_stream`` makes a stream: ``AioCallStream`` or ``BlockingCallStream``."""

    def __call__(
        self,
        address: SocketAddress,
        *,
        max_message_bytes: int,
        max_in_flight: int,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> S: ...


def open_call_stream(
    stream_class: CallStreamClass[S],
    address: str,
    *,
    multiplex: bool,
    channel_given: bool,
    tls: TlsConfig | None,
    max_message_bytes: int | None,
    max_calls_per_stream: int | None,
    metadata: Sequence[tuple[str, str]],
) -> S | None:
    """A transport's Calls stream to ``address`` (not yet connected), or None when its tool calls
    use ExecuteTool: ``multiplex`` off, a channel given (its owner decides how to connect), ``tls``
    (the stream is plaintext only), or an address the stream cannot dial. At most
    ``max_calls_per_stream`` calls are in flight on it (``GRPC_CONFIG``'s when None)."""
    socket_address = parse_address(address) if multiplex and not channel_given and tls is None else None
    if socket_address is None:
        return None
    return stream_class(
        socket_address,
        max_message_bytes=message_limit(max_message_bytes),
        max_in_flight=config.max_calls_per_stream() if max_calls_per_stream is None else max_calls_per_stream,
        metadata=metadata,
    )
