/**
 * One tool call from receipt to outcome, shared by ExecuteTool and every item of a
 * batch: validate, admit against the tool's limits, run, release, count, log.
 */
import type * as grpc from "@grpc/grpc-js";
import { BridgeError, ErrorType, type pb, type pbValues } from "@toolbridge/core";
import type { Logger } from "pino";
import { UNRESOLVED_TOOL } from "../metrics/metrics.js";
import { errorInfo, type HostRuntime, newId } from "../runtime.js";
import type { ToolInvocation } from "../tools/executor.js";
import { admit, type Permit } from "../tools/limits.js";
import {
  CANCELLED_BY_CLIENT,
  type CallRequest,
  createInvocation,
  prepareInvocation,
  runToCompletion,
} from "./tools.js";

const MAX_REQUEST_ID = 128;

/**
 * The request id of a call: the one in the message, else the `x-request-id` metadata
 * header (what HTTP gateways and tracing proxies set), else a fresh one.
 */
export function requestIdOf(
  fromMessage: string,
  metadata: grpc.Metadata,
  kind = "req",
  fallback: string = newId(kind),
): string {
  if (fromMessage !== "") return fromMessage.slice(0, MAX_REQUEST_ID);
  const header = metadata.get("x-request-id")[0];
  if (typeof header === "string" && header !== "") return header.slice(0, MAX_REQUEST_ID);
  return fallback;
}

/**
 * A logger whose every line carries `bindings` (the call's request id, ...). Every
 * per-call line is at debug level, so below it the parent is returned as it is: a child
 * logger serializes its bindings, a cost per call that buys nothing when nothing is logged.
 */
export function callLogger(parent: Logger, bindings: Record<string, string | number>): Logger {
  return parent.isLevelEnabled("debug") ? parent.child(bindings) : parent;
}

/**
 * Why a call's tools are aborted when grpc-js reports the call cancelled: its deadline
 * passed (a Timeout, as the tool's own timer would have said a moment later) or the
 * client really cancelled or went away.
 */
export function cancellationReason(deadline: grpc.Deadline): BridgeError {
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  if (Number.isFinite(at) && Date.now() >= at) {
    return new BridgeError(ErrorType.Timeout, "the call's gRPC deadline passed", {
      details: { reason: "deadline" },
    });
  }
  return CANCELLED_BY_CLIENT();
}

/**
 * The cancellation of one RPC, shared by the tool calls it runs (one for ExecuteTool,
 * many for a batch): cancelling it aborts every call still running. Lighter than an
 * AbortController and a listener per call, which profiles showed as a large share of a
 * small call's cost.
 */
export class RpcCancellation {
  reason: BridgeError | undefined;
  private readonly running = new Set<ToolInvocation>();

  get cancelled(): boolean {
    return this.reason !== undefined;
  }

  cancel(reason: BridgeError): void {
    if (this.reason !== undefined) return;
    this.reason = reason;
    for (const invocation of this.running) invocation.abort(reason);
  }

  attach(invocation: ToolInvocation): void {
    this.running.add(invocation);
  }

  detach(invocation: ToolInvocation): void {
    this.running.delete(invocation);
  }
}

/** Cancels `cancellation` with the right reason when grpc-js reports `call` cancelled; returns the unsubscriber. */
export function cancelOnClientCancel(
  call: {
    once(event: "cancelled", listener: () => void): unknown;
    removeListener(event: "cancelled", listener: () => void): unknown;
    getDeadline(): grpc.Deadline;
  },
  cancellation: RpcCancellation,
): () => void {
  const onCancelled = () => cancellation.cancel(cancellationReason(call.getDeadline()));
  call.once("cancelled", onCancelled);
  return () => call.removeListener("cancelled", onCancelled);
}

export type CallOutcome =
  | { readonly success: true; readonly result: pbValues.Value; readonly metrics: pb.ExecutionMetrics }
  | { readonly success: false; readonly error: pb.ErrorInfo; readonly metrics: pb.ExecutionMetrics };

export interface RunOptions {
  /** The id the tool sees in its context. */
  requestId: string;
  deadline: grpc.Deadline;
  /** Cancelling it aborts the tool (its reason becomes the call's error). */
  cancellation: RpcCancellation;
  log: Logger;
  /** The RPC has already looked the session up (a batch does, once for all its items). */
  sessionChecked?: boolean;
}

/** Runs one call to its outcome; never throws. */
export async function runCall(rt: HostRuntime, req: CallRequest, options: RunOptions): Promise<CallOutcome> {
  const started = performance.now();
  const { cancellation, log } = options;
  let invocation: ToolInvocation | undefined;
  let permit: Permit | undefined;
  let ran = false;
  try {
    if (cancellation.reason !== undefined) throw cancellation.reason;
    invocation = options.sessionChecked
      ? createInvocation(rt, req, options.requestId, options.deadline)
      : await prepareInvocation(rt, req, options.requestId, options.deadline);
    // The client may have gone while the session was looked up; do not start the tool then.
    if (cancellation.reason !== undefined) throw cancellation.reason;
    cancellation.attach(invocation);
    permit = admit(invocation.tool);
    ran = true;
    const result = await runToCompletion(invocation);
    const ended = performance.now();
    const durationMs = ended - invocation.startedAt;
    rt.metrics.recordCall(invocation.tool.name, undefined, durationMs);
    log.debug({ sessionId: req.sessionId, tool: req.toolId, durationMs }, "tool call succeeded");
    return { success: true, result, metrics: { durationMs, hostMs: ended - started } };
  } catch (error) {
    const info = errorInfo(rt, error);
    const durationMs = ran && invocation !== undefined ? invocation.elapsedMs() : undefined;
    const tool =
      invocation?.tool.name ?? rt.tools.resolve(req.sessionId, req.toolId)?.name ?? UNRESOLVED_TOOL;
    rt.metrics.recordCall(tool, info.type, durationMs);
    log.debug(
      { sessionId: req.sessionId, tool: req.toolId, error: info.type, message: info.message },
      "tool call failed",
    );
    return {
      success: false,
      error: info,
      metrics: { durationMs: durationMs ?? 0, hostMs: performance.now() - started },
    };
  } finally {
    permit?.release();
    if (invocation !== undefined) cancellation.detach(invocation);
  }
}

export async function executeTool(
  rt: HostRuntime,
  req: pb.ToolCallRequest,
  call: grpc.ServerUnaryCall<pb.ToolCallRequest, pb.ToolCallResponse>,
): Promise<pb.ToolCallResponse> {
  const requestId = requestIdOf(req.requestId, call.metadata);
  const cancellation = new RpcCancellation();
  const unsubscribe = cancelOnClientCancel(call, cancellation);
  try {
    const outcome = await runCall(rt, req, {
      requestId,
      deadline: call.getDeadline(),
      cancellation,
      log: callLogger(rt.log, { request_id: requestId }),
    });
    return outcome.success
      ? { success: true, result: outcome.result, error: undefined, requestId, metrics: outcome.metrics }
      : { success: false, result: undefined, error: outcome.error, requestId, metrics: outcome.metrics };
  } finally {
    unsubscribe();
  }
}
