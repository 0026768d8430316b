/**
 * What the ToolBridge service's handlers serve from: the call engine, the sessions and
 * variables, the view the operations RPCs read, and the wire's own state (health, calls in
 * flight, stream quotas, the open Calls streams, whether the host drains). The composition
 * root (host/compose.ts) makes it.
 */
import type { Logger } from "pino";
import type { Authenticator } from "../auth/authenticator.js";
import type { HostConfig } from "../config.js";
import type { HostView } from "../inspector/host-view.js";
import type { HostMetrics } from "../metrics/metrics.js";
import type { SessionManager } from "../sessions/manager.js";
import type { CallEngine } from "../tools/engine.js";
import type { TracingSlot } from "../tracing/contract.js";
import type { VariableService } from "../variables/service.js";
import type { OpenCallStreams } from "./call-streams.js";
import type { HostHealth } from "./health-status.js";
import type { InFlightCalls } from "./in-flight.js";
import type { StreamLimits } from "./stream-limits.js";

export interface RpcHost {
  /** Runs every tool call: ExecuteTool, StreamTool, BatchExecuteTools, Calls, and lists tools. */
  readonly engine: CallEngine;
  readonly config: HostConfig;
  readonly sessions: SessionManager;
  readonly variables: VariableService;
  readonly log: Logger;
  readonly metrics: HostMetrics;
  readonly startedAt: number;
  readonly version: string;
  /** Set once shutdown begins: new calls other than health checks are refused with UNAVAILABLE. */
  draining: boolean;
  /** What the health RPCs report. */
  readonly health: HostHealth;
  /** The ToolBridge calls in progress, which a graceful shutdown waits for (a Calls stream counts as one). */
  readonly calls: InFlightCalls;
  /** Who is calling: principals from tokens, client certificates or the application's hook. */
  readonly auth: Authenticator;
  /** Watches and tool streams open per session and principal. */
  readonly streams: StreamLimits;
  /** The open Calls streams, which a shutdown drains. */
  readonly callStreams: OpenCallStreams;
  /** What the operations RPCs (ListRecentCalls, DescribeHost, ...) read: the call log, workers, nodes. */
  readonly operations: HostView;
  /** The host's tracing (docs/tracing.md): set when it starts with tracing on. */
  readonly tracing: TracingSlot;
}
