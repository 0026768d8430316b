/**
 * Everything the call engine needs of the host, and nothing more: the composition root
 * (host/compose.ts) provides it, and no part of it belongs to a wire protocol.
 */
import type { Logger } from "pino";
import type { Principal } from "../auth/principal.js";
import type { HostConfig } from "../config.js";
import type { HostMetrics } from "../metrics/metrics.js";
import type { TracingSlot } from "../tracing/contract.js";
import type { SharedRate } from "./limits.js";
import type { ToolRegistry } from "./registry.js";
import type { RemoteTools } from "./remote.js";
import type { ReplayLedger } from "./replay.js";

/** The configuration the engine reads: timeouts, batch limits, stack traces, fault attribution. */
export type EngineConfig = Pick<
  HostConfig,
  | "toolTimeoutMs"
  | "streamTotalTimeoutMs"
  | "streamIdleTimeoutMs"
  | "exposeStackTraces"
  | "attributeToolFaults"
  | "maxBatchSize"
  | "batchMaxParallel"
>;

/** The session check every call makes. */
export interface SessionCheck {
  /**
   * Resolves when session `sessionId` is live and `principal`'s to use (renewing its lease);
   * rejects with SessionNotFound otherwise, Unavailable when the store is unreachable.
   */
  require(sessionId: string, principal: Principal): Promise<unknown>;
}

/** The counters and histograms the engine feeds. */
export type CallMetrics = Pick<
  HostMetrics,
  "recordCall" | "recordOverdue" | "recordReplay" | "recordStreamChunk" | "recordBatch"
>;

/** The engine's dependencies (CallEngine's constructor takes them). */
export interface EngineHost {
  readonly config: EngineConfig;
  readonly sessions: SessionCheck;
  /** This node's tools: global ones and each session's. */
  readonly tools: ToolRegistry;
  readonly metrics: CallMetrics;
  /** Host bugs (errors that are no BridgeError) are logged here. */
  readonly log: Logger;
  /** Records and replays calls by idempotency key; undefined when replay is off (replayWindowMs 0). */
  readonly replay?: ReplayLedger | undefined;
  /** With a store shared by several nodes: where the rate limits of global tools are counted. */
  readonly sharedRate?: SharedRate | undefined;
  /** With a store shared by several nodes: the session tools other nodes serve. */
  readonly remote?: RemoteTools | undefined;
  /** The host's tracing: each call's execute_tool span when `current` is set (docs/tracing.md). */
  readonly tracing?: TracingSlot | undefined;
}
