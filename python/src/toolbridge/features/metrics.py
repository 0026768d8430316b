"""GetMetrics from Python: the host's counters (the same ones its Prometheus endpoint serves)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from toolbridge.core.specs import to_datetime
from toolbridge.transport import AioTransport
from toolbridge.transport.blocking import SyncTransport
from toolbridge.v1 import toolbridge_pb2 as pb


@dataclass(frozen=True)
class ToolMetrics:
    tool: str
    calls: int
    errors: int
    errors_by_type: dict[str, int]
    total_duration_ms: float
    """Time the tool ran, summed over its calls."""


@dataclass(frozen=True)
class HostMetrics:
    tools: dict[str, ToolMetrics]
    active_sessions: int
    stream_chunks_total: int
    batches_total: int
    collected_at: datetime


async def get_metrics(transport: AioTransport, *, timeout_ms: float | None = None) -> HostMetrics:
    """The host's counters now (GetMetrics), within ``timeout_ms`` (the transport's default when None)."""
    response = await transport.unary(
        "GetMetrics", transport.stub.GetMetrics, pb.GetMetricsRequest(), timeout_ms=timeout_ms
    )
    return host_metrics(response)


def get_metrics_blocking(transport: SyncTransport, *, timeout_ms: float | None = None) -> HostMetrics:
    """``get_metrics`` over the blocking transport."""
    response = transport.unary(
        "GetMetrics", transport.stub.GetMetrics, pb.GetMetricsRequest(), timeout_ms=timeout_ms
    )
    return host_metrics(response)


def host_metrics(response: pb.GetMetricsResponse) -> HostMetrics:
    """A GetMetrics response as ``HostMetrics``."""
    return HostMetrics(
        tools={
            t.tool: ToolMetrics(
                tool=t.tool,
                calls=t.calls,
                errors=t.errors,
                errors_by_type=dict(t.errors_by_type),
                total_duration_ms=t.total_duration_ms,
            )
            for t in response.tools
        },
        active_sessions=response.active_sessions,
        stream_chunks_total=response.stream_chunks_total,
        batches_total=response.batches_total,
        collected_at=to_datetime(response.collected_at),
    )
