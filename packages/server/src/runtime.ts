import { BridgeError, ErrorType, type pb } from "@toolbridge/core";
import type { Logger } from "pino";
import type { Authenticator } from "./auth/authenticator.js";
import type { HostConfig } from "./config.js";
import type { HostView } from "./inspector/host-view.js";
import type { HostMetrics } from "./metrics/metrics.js";
import type { OpenCallStreams } from "./rpc/call-streams.js";
import type { HostHealth } from "./rpc/health.js";
import type { InFlightCalls } from "./rpc/in-flight.js";
import type { StreamLimits } from "./rpc/stream-limits.js";
import type { SessionManager } from "./sessions/manager.js";
import type { Forwarder } from "./tools/forward.js";
import type { SharedRate } from "./tools/limits.js";
import type { ToolRegistry } from "./tools/registry.js";
import type { ReplayLedger } from "./tools/replay.js";
import type { VariableService } from "./variables/service.js";

/** The host's shared state: what the call engine and every RPC handler work with. */
export interface HostRuntime {
  readonly config: HostConfig;
  readonly sessions: SessionManager;
  readonly tools: ToolRegistry;
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
  /** Records and replays calls by request id; undefined when replay is off (replayWindowMs 0). */
  readonly replay: ReplayLedger | undefined;
  /** With a store shared by several nodes: where the rate limits of global tools are counted. */
  readonly sharedRate: SharedRate | undefined;
  /** With a store shared by several nodes: finds and calls the session tools of other nodes. */
  readonly forwarder: Forwarder | undefined;
  /** The open Calls streams, which a shutdown drains. */
  readonly callStreams: OpenCallStreams;
  /** What the operations RPCs (ListRecentCalls, DescribeHost, ...) read: the call log, workers, nodes. */
  readonly operations: HostView;
}

let counter = 0;
const prefix = `${process.pid.toString(36)}${Date.now().toString(36)}`;

/** A cheap id unique within this host process, for requests and streams without one. */
export function newId(kind: string): string {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  return `${kind}_${prefix}_${counter.toString(36)}`;
}

/** The in-band form of any failure; an error that is not a BridgeError is a host bug. */
export function errorInfo(runtime: HostRuntime, error: unknown): pb.ErrorInfo {
  if (error instanceof BridgeError) {
    const { stacktrace, ...details } = error.details;
    return {
      type: error.type,
      message: error.message,
      details,
      stacktrace: runtime.config.exposeStackTraces ? (stacktrace ?? "") : "",
    };
  }
  runtime.log.error({ err: error }, "internal error while handling a call");
  return {
    type: ErrorType.InternalError,
    message: `internal host error: ${error instanceof Error ? error.message : String(error)}`,
    details: {},
    stacktrace: runtime.config.exposeStackTraces && error instanceof Error ? (error.stack ?? "") : "",
  };
}

export const SHUTTING_DOWN = "the toolbridge host is shutting down; retry against another host or later";
