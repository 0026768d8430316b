"""Settings shared by every client: the channel's limits and the client's own timings.

The host's defaults match (docs/configuration.md): a 10 MiB message limit, keepalive pings
every 30 s with a 10 s timeout, and at most 100 calls in flight on one call stream. Each
client reads these when it is created; its constructor's arguments override them. Every
duration is in milliseconds. The names the original guide gave three settings are still
read, and win when set: ``GRPC_CONFIG["max_message_length"]`` (``max_message_bytes``),
``GRPC_CONFIG["max_concurrent_rpcs"]`` (``max_calls_per_stream``) and
``TOOL_BRIDGE_CONFIG["cache_ttl_seconds"]`` (``cache_ttl_ms``, in seconds).
"""

from __future__ import annotations

from typing import Any, Final

GRPC_CONFIG: Final[dict[str, int]] = {
    "max_message_bytes": 10 * 1024 * 1024,
    "keepalive_time_ms": 30_000,
    "keepalive_timeout_ms": 10_000,
    # Tool calls in flight on one client's call stream (the host's maxCallsPerStream); more wait.
    "max_calls_per_stream": 100,
}

TOOL_BRIDGE_CONFIG: Final[dict[str, Any]] = {
    # Every call without a timeout of its own gets this one (a stream: as its idle timeout; every
    # other unary RPC but a batch: as its deadline), so a host that stops answering fails the
    # call instead of hanging its caller.
    "default_timeout_ms": 30_000,
    # The host enforces each call's timeout; the client adds this much slack to its own
    # deadline so the host's Timeout error, not DEADLINE_EXCEEDED, arrives.
    "deadline_slack_ms": 1_000,
    "health_check_timeout_ms": 5_000,
    # Tool calls whose request is larger than this go through ExecuteTool on a stream of their
    # own, so that a large payload does not hold up the small calls on the shared call stream.
    "multiplex_max_request_bytes": 64 * 1024,
    # How long SyncToolBridgeClient polls for an answer without sleeping before it blocks: a
    # small call is answered within this on an idle machine, and being woken costs as much.
    # 0 turns it off; a process limited to one CPU never spins.
    "blocking_spin_us": 100,
    # The defaults of SessionContext(cache=...) and CachedSessionContext(ttl_ms=...).
    "enable_caching": True,
    "cache_ttl_ms": 300_000,
}


def max_message_bytes() -> int:
    """``GRPC_CONFIG["max_message_bytes"]``, or the guide's ``max_message_length`` when set."""
    return int(GRPC_CONFIG.get("max_message_length", GRPC_CONFIG["max_message_bytes"]))


def max_calls_per_stream() -> int:
    """``GRPC_CONFIG["max_calls_per_stream"]``, or the guide's ``max_concurrent_rpcs`` when set."""
    return int(GRPC_CONFIG.get("max_concurrent_rpcs", GRPC_CONFIG["max_calls_per_stream"]))


def cache_ttl_ms() -> float:
    """``TOOL_BRIDGE_CONFIG["cache_ttl_ms"]``, or the guide's ``cache_ttl_seconds`` when set."""
    seconds = TOOL_BRIDGE_CONFIG.get("cache_ttl_seconds")
    if seconds is not None:
        return float(seconds) * 1000
    return float(TOOL_BRIDGE_CONFIG["cache_ttl_ms"])
