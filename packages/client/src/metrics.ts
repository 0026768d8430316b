import { fromPbTimestamp, type pb } from "@toolbridge/core";

/** One tool's counters (`ToolMetrics` of GetMetrics). */
export interface ToolMetrics {
  readonly tool: string;
  readonly calls: number;
  readonly errors: number;
  readonly errorsByType: Readonly<Record<string, number>>;
  /** Time the tool ran, summed over its calls. */
  readonly totalDurationMs: number;
}

/** GetMetrics as plain numbers (the counts fit easily: a host would need 2^53 calls to lose precision). */
export interface HostMetrics {
  readonly tools: readonly ToolMetrics[];
  readonly activeSessions: number;
  readonly streamChunksTotal: number;
  readonly batchesTotal: number;
  readonly collectedAt: Date;
}

export function hostMetricsFromPb(response: pb.GetMetricsResponse): HostMetrics {
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
