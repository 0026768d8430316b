"""The wire under the clients: channels, tool calls, deadlines, cancellation and error mapping.

Everything above it (batches, retries, variables, metrics; the facades) reaches the host
through this package. ``messages`` and ``error_mapping`` build requests and read answers
without doing I/O, so that any transport shares them; ``aio`` (``AioTransport``) carries
them over ``grpc.aio`` and an asyncio call stream, ``blocking`` (``SyncTransport``) over a
blocking channel and a call stream on a blocking socket, with the same methods.
"""

from toolbridge.transport.aio import AioTransport
from toolbridge.transport.blocking import SyncTransport
from toolbridge.transport.channel import channel_options, create_grpc_channel
from toolbridge.transport.credentials import TlsConfig, credentials_from_env, token_interceptors
from toolbridge.transport.error_mapping import (
    RpcFailure,
    communication_error,
    error_details,
    error_from_info,
)
from toolbridge.transport.messages import (
    chunk_content,
    deadline_ms,
    deadline_s,
    default_timeout,
    encode_args,
    encode_kwargs,
    new_request_id,
    tool_call_request,
    tool_stream_request,
)

__all__ = [
    "AioTransport",
    "RpcFailure",
    "SyncTransport",
    "TlsConfig",
    "channel_options",
    "chunk_content",
    "communication_error",
    "create_grpc_channel",
    "credentials_from_env",
    "deadline_ms",
    "deadline_s",
    "default_timeout",
    "encode_args",
    "encode_kwargs",
    "error_details",
    "error_from_info",
    "new_request_id",
    "token_interceptors",
    "tool_call_request",
    "tool_stream_request",
]
