"""Channel settings shared by every client, with the guide's defaults.

The host's defaults match (docs/configuration.md): a 10 MiB message limit and
keepalive pings every 30 s with a 10 s timeout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import grpc

GRPC_CONFIG: Final[dict[str, int]] = {
    "max_message_length": 10 * 1024 * 1024,
    "keepalive_time_ms": 30_000,
    "keepalive_timeout_ms": 10_000,
}

TOOL_BRIDGE_CONFIG: Final[dict[str, Any]] = {
    # The host enforces each tool's own timeout; the client adds this much slack to
    # its gRPC deadline so the host's Timeout error, not DEADLINE_EXCEEDED, arrives.
    "deadline_slack_ms": 1_000,
    "health_check_timeout_s": 5.0,
}


def channel_options(
    max_message_bytes: int | None = None, extra: Sequence[tuple[str, Any]] = ()
) -> list[tuple[str, Any]]:
    size = max_message_bytes if max_message_bytes is not None else GRPC_CONFIG["max_message_length"]
    return [
        ("grpc.max_receive_message_length", size),
        ("grpc.max_send_message_length", size),
        ("grpc.keepalive_time_ms", GRPC_CONFIG["keepalive_time_ms"]),
        ("grpc.keepalive_timeout_ms", GRPC_CONFIG["keepalive_timeout_ms"]),
        *extra,
    ]


def create_grpc_channel(
    address: str,
    *,
    max_message_bytes: int | None = None,
    options: Sequence[tuple[str, Any]] = (),
    credentials: grpc.ChannelCredentials | None = None,
) -> grpc.aio.Channel:
    """An asyncio channel to a toolbridge host with the guide's settings (plaintext unless credentials)."""
    opts = channel_options(max_message_bytes, options)
    if credentials is not None:
        return grpc.aio.secure_channel(address, credentials, options=opts)
    return grpc.aio.insecure_channel(address, options=opts)
