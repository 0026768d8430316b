/**
 * What an adapter hands the call engine and gets back: the request (`CallRequest`), how the
 * call is carried (`CallContext`, with its `Cancellation`), and how it ended (`CallOutcome`,
 * `StreamOutcome`). Every way into the engine (the gRPC services, workers, calls forwarded
 * from other nodes) builds these the same way; tools/engine.ts says what the engine does
 * with them.
 */
import type { BridgeError, pb, pbValues } from "@toolbridge/core";
import type { Logger } from "pino";
import type { Principal } from "../auth/principal.js";

/** What a call asks for; the decoded ToolCallRequest, ToolStreamRequest or batch item. */
export interface CallRequest {
  readonly sessionId: string;
  readonly toolId: string;
  readonly args: readonly pbValues.Value[];
  readonly kwargs: Readonly<Record<string, pbValues.Value>>;
  /** The longest the call may run (a stream: its total budget); 0 uses the tool's. */
  readonly timeoutMs: number;
  /** A stream's longest wait for its next chunk; 0 or absent uses the tool's. */
  readonly idleTimeoutMs?: number;
}

/** How a call is carried: its id, its deadline, its cancellation and its logger. */
export interface CallContext {
  /** The id the tool sees (`ctx.requestId`). */
  readonly requestId: string;
  /** Epoch milliseconds by which the call must end (the gRPC deadline); Infinity for none. */
  readonly deadline: number;
  /** Cancelling it aborts the call; its reason becomes the call's error. */
  readonly cancellation: Cancellation;
  /** Per-call lines go here at debug level (see `callLogger`). */
  readonly log: Logger;
  /** Who is calling: the session must be this principal's. */
  readonly principal: Principal;
  /** The caller has looked the session up already (a batch does, once for all its items). */
  readonly sessionChecked?: boolean;
  /**
   * The request id the client chose (not one the host made up): a retry under it is
   * answered with this call's recorded outcome (replay.ts). Absent: nothing is recorded.
   */
  readonly idempotencyKey?: string;
  /** This call was forwarded by another node, which records it and must not get it back. */
  readonly forwarded?: boolean;
  /** What the call came over, for the metrics' `protocol` label; absent: gRPC. */
  readonly protocol?: string;
}

/** How a call ended: its encoded result or its error, with the host's timings either way. */
export type CallOutcome =
  | { readonly success: true; readonly result: pbValues.Value; readonly metrics: pb.ExecutionMetrics }
  | { readonly success: false; readonly error: pb.ErrorInfo; readonly metrics: pb.ExecutionMetrics };

/** How a stream ended, after `chunks` data chunks went into the sink. */
export type StreamOutcome =
  | { readonly success: true; readonly chunks: number; readonly metrics: pb.ExecutionMetrics }
  | { readonly success: false; readonly error: pb.ErrorInfo; readonly chunks: number };

/**
 * Takes a stream's encoded chunks in order. A returned promise is waited for before the
 * tool is asked for more (back-pressure; an abort ends the wait). Throwing refuses the
 * chunk and fails the call with that error (e.g. a chunk over the message limit).
 */
export type ChunkSink = (chunk: pbValues.Value, sequence: number) => Promise<void> | undefined;

/**
 * The cancellation of one call, or of several that end together (the items of a batch):
 * cancelling it aborts every call still running. Lighter than an AbortController and a
 * listener per call, which profiles showed as a large share of a small call's cost.
 */
export class Cancellation {
  reason: BridgeError | undefined;
  private readonly running = new Set<{ abort(reason: BridgeError): void }>();
  private cancelled$: Promise<never> | undefined;
  private reject: ((reason: BridgeError) => void) | undefined;

  get cancelled(): boolean {
    return this.reason !== undefined;
  }

  /** Aborts every attached call with `reason` and refuses calls not started yet; later calls are ignored. */
  cancel(reason: BridgeError): void {
    if (this.reason !== undefined) return;
    this.reason = reason;
    for (const invocation of this.running) invocation.abort(reason);
    this.reject?.(reason);
  }

  /** A running call that `cancel` must abort (a ToolInvocation, or a call forwarded to another node). */
  attach(invocation: { abort(reason: BridgeError): void }): void {
    this.running.add(invocation);
  }

  detach(invocation: { abort(reason: BridgeError): void }): void {
    this.running.delete(invocation);
  }

  /** Rejects with the reason once cancelled; for waits that are not a running call (a replay's). */
  whenCancelled(): Promise<never> {
    if (this.cancelled$ === undefined) {
      this.cancelled$ = new Promise<never>((_, reject) => {
        if (this.reason !== undefined) reject(this.reason);
        this.reject = reject;
      });
      this.cancelled$.catch(() => {});
    }
    return this.cancelled$;
  }
}

/**
 * A logger whose every line carries `bindings` (the call's request id, ...). Every
 * per-call line is at debug level, so below it the parent is returned as it is: a child
 * logger serializes its bindings, a cost per call that buys nothing when nothing is logged.
 */
export function callLogger(parent: Logger, bindings: Record<string, string | number>): Logger {
  return parent.isLevelEnabled("debug") ? parent.child(bindings) : parent;
}

let counter = 0;
const prefix = `${process.pid.toString(36)}${Date.now().toString(36)}`;

/**
 * A cheap id unique within this host process, for requests and streams the client named
 * none for: `<kind>_<process and start time>_<counter>`.
 */
export function newId(kind: string): string {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  return `${kind}_${prefix}_${counter.toString(36)}`;
}
