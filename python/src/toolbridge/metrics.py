"""GetMetrics from Python: the host's counters (the same ones its Prometheus endpoint serves)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from toolbridge.v1 import toolbridge_pb2 as pb

if TYPE_CHECKING:
    from toolbridge.client import ToolBridgeClient


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


async def get_metrics(client: ToolBridgeClient, timeout_s: float | None = None) -> HostMetrics:
    response: pb.GetMetricsResponse = await client._unary(
        "GetMetrics", client.stub.GetMetrics(pb.GetMetricsRequest(), timeout=timeout_s)
    )
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
        collected_at=response.collected_at.ToDatetime(tzinfo=UTC),
    )
