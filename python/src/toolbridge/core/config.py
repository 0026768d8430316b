"""Settings shared by every client: the channel's limits and the client's own timings.

The host's defaults match (docs/configuration.md): a 10 MiB message limit, keepalive pings
every 30 s with a 10 s timeout, and at most 100 calls in flight on one call stream. Each
client reads these when it is created; its constructor's arguments override them.
"""

from __future__ import annotations

from typing import Any, Final

GRPC_CONFIG: Final[dict[str, int]] = {
    "max_message_length": 10 * 1024 * 1024,
    "keepalive_time_ms": 30_000,
    "keepalive_timeout_ms": 10_000,
    # Tool calls in flight on one client's call stream (the host's maxCallsPerStream); more wait.
    "max_concurrent_rpcs": 100,
}

TOOL_BRIDGE_CONFIG: Final[dict[str, Any]] = {
    # Every call without a timeout of its own gets this one (a stream: as its idle timeout; every
    # other unary RPC but a batch: as its deadline), so a host that stops answering fails the
    # call instead of hanging its caller.
    "default_timeout_ms": 30_000,
    # The host enforces each call's timeout; the client adds this much slack to its own
    # deadline so the host's Timeout error, not DEADLINE_EXCEEDED, arrives.
    "deadline_slack_ms": 1_000,
    "health_check_timeout_s": 5.0,
    # Tool calls whose request is larger than this go through ExecuteTool on a stream of their
    # own, so that a large payload does not hold up the small calls on the shared call stream.
    "multiplex_max_request_bytes": 64 * 1024,
    # How long SyncToolBridgeClient polls for an answer without sleeping before it blocks: a
    # small call is answered within this on an idle machine, and being woken costs as much.
    # 0 turns it off; a process limited to one CPU never spins.
    "blocking_spin_us": 100,
    # The defaults of SessionContext(cache=...) and CachedSessionContext(ttl_s=...).
    "enable_caching": True,
    "cache_ttl_seconds": 300.0,
}
