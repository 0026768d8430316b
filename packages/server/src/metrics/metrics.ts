/**
 * The host's metrics: one prom-client registry per host, read both by the GetMetrics
 * RPC and by the Prometheus /metrics endpoint, so the two can never disagree.
 */
import { type pb, toPbTimestamp } from "@toolbridge/core";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { StoreUsage } from "../sessions/store.js";

/**
 * The `protocol` label of calls that came over gRPC (the ToolBridge service); MCP clients'
 * calls are labelled "mcp".
 */
export const GRPC_PROTOCOL = "grpc";

/**
 * The `tool` label of a call whose tool could not be resolved (unknown tool or
 * session). Client-chosen names would otherwise become label values without bound.
 */
export const UNRESOLVED_TOOL = "(unresolved)";

// Tool latencies range from sub-millisecond lookups to the 30 s default timeout.
const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const BATCH_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000];

/** One finished tool call: what the metrics count, and what the call log (ListRecentCalls) keeps. */
export interface FinishedCall {
  /** The tool the call resolved to, else UNRESOLVED_TOOL. */
  readonly tool: string;
  readonly sessionId: string;
  readonly requestId: string;
  /** The name of the principal that made the call. */
  readonly principal: string;
  /** A StreamTool call (its chunks streamed) rather than one answered with one result. */
  readonly streamed: boolean;
  /** What the call came over: GRPC_PROTOCOL, or "mcp" for an MCP client's call. */
  readonly protocol: string;
  /** Undefined when the tool never started (refused by validation or a limit). */
  readonly durationMs: number | undefined;
  /** The host's time on the call, tool time included. */
  readonly hostMs: number;
  /** Undefined on success. */
  readonly error: pb.ErrorInfo | undefined;
}

export class HostMetrics {
  readonly registry = new Registry();
  private readonly calls: Counter<"tool" | "protocol">;
  private readonly errors: Counter<"tool" | "error_type" | "protocol">;
  private readonly duration: Histogram<"tool" | "protocol">;
  private readonly streamChunks: Counter<"tool">;
  private readonly batchSize: Histogram;
  private readonly overdue: Gauge<"tool">;
  private readonly replays: Counter<"outcome">;
  private readonly callListeners: ((call: FinishedCall) => void)[] = [];

  /**
   * `storeUsage` reports what the session store keeps in this process (the memory store);
   * undefined, or a store that keeps nothing here, reports no store bytes.
   */
  constructor(
    private readonly countSessions: () => Promise<number>,
    storeUsage?: () => StoreUsage | undefined,
  ) {
    const registers = [this.registry];
    this.calls = new Counter({
      name: "toolbridge_tool_calls_total",
      help:
        "Tool calls received (ExecuteTool, StreamTool, each batch item, MCP tools/call), by tool and " +
        "the protocol they came over (grpc, mcp)",
      labelNames: ["tool", "protocol"],
      registers,
    });
    this.errors = new Counter({
      name: "toolbridge_tool_errors_total",
      help: "Tool calls that failed, by tool, error type (the ErrorInfo.type sent to the client) and protocol",
      labelNames: ["tool", "error_type", "protocol"],
      registers,
    });
    this.duration = new Histogram({
      name: "toolbridge_tool_duration_seconds",
      help: "Time tools ran, by tool and protocol (calls refused before the tool started are not observed)",
      labelNames: ["tool", "protocol"],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.streamChunks = new Counter({
      name: "toolbridge_stream_chunks_total",
      help: "Data chunks sent by StreamTool, by tool",
      labelNames: ["tool"],
      registers,
    });
    this.batchSize = new Histogram({
      name: "toolbridge_batch_size",
      help: "Items per BatchExecuteTools call that was accepted",
      buckets: BATCH_BUCKETS,
      registers,
    });
    this.overdue = new Gauge({
      name: "toolbridge_tool_calls_overdue",
      help:
        "Tool calls that ended (timed out or cancelled) while their tool, ignoring its abort signal, " +
        "still runs; each keeps its concurrency slot until the tool settles. By tool",
      labelNames: ["tool"],
      registers,
    });
    this.replays = new Counter({
      name: "toolbridge_replayed_calls_total",
      help: "Calls answered with the recorded outcome of an earlier call under the same request id, by outcome",
      labelNames: ["outcome"],
      registers,
    });
    new Gauge({
      name: "toolbridge_active_sessions",
      help: "Live sessions in the session store",
      registers,
      async collect() {
        this.set(await countSessions());
      },
    });
    if (storeUsage !== undefined) {
      new Gauge({
        name: "toolbridge_store_bytes",
        help:
          "Encoded bytes the memory store keeps, by kind: session ids and metadata, variables, watch " +
          "history, call records, deleted names (their sum is what maxTotalVariableBytes bounds)",
        labelNames: ["kind"],
        registers,
        collect() {
          const usage = storeUsage();
          if (usage === undefined) return;
          for (const [kind, bytes] of Object.entries(usage)) this.set({ kind }, bytes);
        },
      });
    }
    collectDefaultMetrics({ register: this.registry });
  }

  /** Records one finished call, and tells the call listeners (onCall) about it. */
  recordCall(call: FinishedCall): void {
    const { tool, error, durationMs, protocol } = call;
    this.calls.inc({ tool, protocol });
    if (error !== undefined) this.errors.inc({ tool, error_type: error.type, protocol });
    if (durationMs !== undefined) this.duration.observe({ tool, protocol }, durationMs / 1000);
    for (const listener of this.callListeners) listener(call);
  }

  /** Calls `listener` with every call recordCall records (the host's call log). */
  onCall(listener: (call: FinishedCall) => void): void {
    this.callListeners.push(listener);
  }

  /** A call of `tool` ended with its tool still running (+1), or that tool settled at last (-1). */
  recordOverdue(tool: string, delta: 1 | -1): void {
    this.overdue.inc({ tool }, delta);
  }

  /** Records a call answered from its record (success when `errorType` is undefined); the tool did not run. */
  recordReplay(errorType: string | undefined): void {
    this.replays.inc({ outcome: errorType ?? "success" });
  }

  recordStreamChunk(tool: string): void {
    this.streamChunks.inc({ tool });
  }

  recordBatch(size: number): void {
    this.batchSize.observe(size);
  }

  /** The Prometheus text exposition of every metric. */
  exposition(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The GetMetrics view of the same counters. */
  async snapshot(): Promise<pb.GetMetricsResponse> {
    const byTool = new Map<string, pb.ToolMetrics>();
    const entry = (tool: string): pb.ToolMetrics => {
      let metrics = byTool.get(tool);
      if (metrics === undefined) {
        metrics = { tool, calls: 0n, errors: 0n, errorsByType: {}, totalDurationMs: 0 };
        byTool.set(tool, metrics);
      }
      return metrics;
    };
    for (const { labels, value } of (await this.calls.get()).values) {
      entry(String(labels.tool)).calls += BigInt(value);
    }
    for (const { labels, value } of (await this.errors.get()).values) {
      const metrics = entry(String(labels.tool));
      const type = String(labels.error_type);
      metrics.errors += BigInt(value);
      metrics.errorsByType[type] = (metrics.errorsByType[type] ?? 0n) + BigInt(value);
    }
    for (const { labels, value, metricName } of (await this.duration.get()).values) {
      if (metricName?.endsWith("_sum") === true) entry(String(labels.tool)).totalDurationMs += value * 1000;
    }
    let streamChunksTotal = 0;
    for (const { value } of (await this.streamChunks.get()).values) streamChunksTotal += value;
    let batchesTotal = 0;
    for (const { value, metricName } of (await this.batchSize.get()).values) {
      if (metricName?.endsWith("_count") === true) batchesTotal += value;
    }
    return {
      tools: [...byTool.values()].sort((a, b) => a.tool.localeCompare(b.tool)),
      activeSessions: await this.countSessions(),
      streamChunksTotal: BigInt(streamChunksTotal),
      batchesTotal: BigInt(batchesTotal),
      collectedAt: toPbTimestamp(Date.now()),
    };
  }
}
