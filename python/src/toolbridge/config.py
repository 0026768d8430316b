"""Settings shared by every client: the channel's limits and the client's own timings.

The host's defaults match (docs/configuration.md): a 10 MiB message limit and
keepalive pings every 30 s with a 10 s timeout.
"""

from __future__ import annotations

from typing import Any, Final

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
