import { fromPbTimestamp, type pb } from "@toolbridge/core";

export interface ToolCallMetrics {
  readonly tool: string;
  readonly calls: number;
  readonly errors: number;
  readonly errorsByType: Readonly<Record<string, number>>;
  /** Time the tool ran, summed over its calls. */
  readonly totalDurationMs: number;
}

/** GetMetrics as plain numbers (the counts fit easily: a host would need 2^53 calls to lose precision). */
export interface MetricsSnapshot {
  readonly tools: readonly ToolCallMetrics[];
  readonly activeSessions: number;
  readonly streamChunksTotal: number;
  readonly batchesTotal: number;
  readonly collectedAt: Date;
}

export function toMetricsSnapshot(response: pb.GetMetricsResponse): MetricsSnapshot {
  return {
    tools: response.tools.map((t) => ({
      tool: t.tool,
      calls: Number(t.calls),
      errors: Number(t.errors),
      errorsByType: Object.fromEntries(Object.entries(t.errorsByType).map(([k, v]) => [k, Number(v)])),
      totalDurationMs: t.totalDurationMs,
    })),
    activeSessions: response.activeSessions,
    streamChunksTotal: Number(response.streamChunksTotal),
    batchesTotal: Number(response.batchesTotal),
    collectedAt: fromPbTimestamp(response.collectedAt),
  };
}
