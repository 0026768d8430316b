"""Readiness probe for load balancers, orchestrators and start-up scripts."""

from __future__ import annotations

import asyncio

import grpc

from toolbridge.core.config import TOOL_BRIDGE_CONFIG
from toolbridge.v1 import toolbridge_pb2 as pb
from toolbridge.v1.toolbridge_pb2_grpc import ToolBridgeStub


def _limit_s(timeout_ms: float | None) -> float:
    limit_ms = float(TOOL_BRIDGE_CONFIG["health_check_timeout_ms"]) if timeout_ms is None else timeout_ms
    return limit_ms / 1000


async def health_check(channel: grpc.aio.Channel, *, timeout_ms: float | None = None) -> bool:
    """True when the host answers SERVING within ``timeout_ms`` (``health_check_timeout_ms``, 5 s,
    by default); never raises."""
    limit_s = _limit_s(timeout_ms)
    stub = ToolBridgeStub(channel)
    try:
        response = await asyncio.wait_for(
            stub.HealthCheck(pb.HealthCheckRequest(), timeout=limit_s), timeout=limit_s
        )
    except (grpc.RpcError, TimeoutError):
        return False
    return bool(response.status == pb.HealthCheckResponse.SERVING)


def health_check_blocking(
    channel: grpc.Channel,
    *,
    timeout_ms: float | None = None,
    metadata: tuple[tuple[str, str], ...] = (),
) -> bool:
    """``health_check`` on a blocking channel (``metadata``: e.g. the caller's token)."""
    try:
        response = ToolBridgeStub(channel).HealthCheck(
            pb.HealthCheckRequest(), timeout=_limit_s(timeout_ms), metadata=metadata
        )
    except grpc.RpcError:
        return False
    return bool(response.status == pb.HealthCheckResponse.SERVING)
