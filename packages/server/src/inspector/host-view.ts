/**
 * What the operations RPCs (ListRecentCalls, GetToolStats, DescribeHost) read of the host
 * beyond the RpcHost every handler has: its call log, its workers and the store's node
 * directory. The composition root (host/compose.ts) builds one; the handlers see only this.
 */
import type { HostMetrics } from "../metrics/metrics.js";
import type { NodeDirectory, NodeEntry } from "../sessions/node-directory.js";
import type { PoolState } from "../workers/metrics.js";
import { RecentCalls, ToolActivity } from "./call-log.js";

export interface HostView {
  readonly recentCalls: RecentCalls;
  readonly toolActivity: ToolActivity;
  /** "memory", "redis" or "custom" (a store the application passed in). */
  readonly store: string;
  readonly tls: boolean;
  /** This node's name among the nodes sharing the store; undefined with a store of its own. */
  readonly nodeId: string | undefined;
  /** The worker pool now; undefined for a host without workers. */
  workers(): PoolState | undefined;
  /** The nodes in the store's directory; empty with a store of this process only. */
  nodes(): Promise<ReadonlyMap<string, NodeEntry>>;
}

export interface HostViewSources {
  readonly metrics: HostMetrics;
  /** Calls the log keeps (recentCalls). */
  readonly recentCalls: number;
  readonly store: string;
  readonly tls: boolean;
  /** The store's node directory; undefined with a store of this process only. */
  readonly nodes: NodeDirectory | undefined;
  readonly workers: () => PoolState | undefined;
}

/** A HostView whose call log records every call `metrics` records from now on. */
export function hostView(sources: HostViewSources): HostView {
  const recentCalls = new RecentCalls(sources.recentCalls);
  const toolActivity = new ToolActivity();
  sources.metrics.onCall((call) => {
    const now = Date.now();
    recentCalls.record(call, now);
    toolActivity.record(call, now);
  });
  const { nodes } = sources;
  return {
    recentCalls,
    toolActivity,
    store: sources.store,
    tls: sources.tls,
    nodeId: nodes?.nodeId,
    workers: sources.workers,
    nodes: async () => (nodes === undefined ? new Map() : nodes.nodes()),
  };
}
