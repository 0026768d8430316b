/**
 * One tool call from receipt to outcome, shared by ExecuteTool and every item of a
 * batch: validate, admit against the tool's limits, run, release, count, log.
 */
import type * as grpc from "@grpc/grpc-js";
import { BridgeError, ErrorType, type pb, type pbValues } from "@toolbridge/core";
import type { Logger } from "pino";
import { UNRESOLVED_TOOL } from "../metrics/metrics.js";
import type { ToolInvocation } from "../tools/executor.js";
import { admit, type Permit } from "../tools/limits.js";
import { errorInfo, type HostRuntime, newId } from "./runtime.js";
import { CANCELLED_BY_CLIENT, type CallRequest, prepareInvocation, runToCompletion } from "./tools.js";

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

/** A logger whose every line for this call carries its request id. */
export function callLogger(
  rt: HostRuntime,
  requestId: string,
  bindings: Record<string, string> = {},
): Logger {
  return rt.log.child({ request_id: requestId, ...bindings });
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

/** Aborts `controller` with the right reason when grpc-js reports `call` cancelled; returns the unsubscriber. */
export function abortOnCancel(
  call: {
    once(event: "cancelled", listener: () => void): unknown;
    removeListener(event: "cancelled", listener: () => void): unknown;
    getDeadline(): grpc.Deadline;
  },
  controller: AbortController,
): () => void {
  const onCancelled = () => controller.abort(cancellationReason(call.getDeadline()));
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
  /** Aborting it aborts the tool (its reason, a BridgeError, becomes the call's error). */
  signal: AbortSignal;
  log: Logger;
}

/** Runs one call to its outcome; never throws. */
export async function runCall(rt: HostRuntime, req: CallRequest, options: RunOptions): Promise<CallOutcome> {
  const started = performance.now();
  const { signal, log } = options;
  let invocation: ToolInvocation | undefined;
  let permit: Permit | undefined;
  let ran = false;
  const onAbort = () => invocation?.abort(abortReason(signal));
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    if (signal.aborted) throw abortReason(signal);
    invocation = await prepareInvocation(rt, req, options.requestId, options.deadline);
    // The client may have gone while the session was looked up; do not start the tool then.
    if (signal.aborted) throw abortReason(signal);
    permit = admit(invocation.tool);
    ran = true;
    const result = await runToCompletion(invocation);
    const durationMs = invocation.elapsedMs();
    rt.metrics.recordCall(invocation.tool.name, undefined, durationMs);
    log.debug({ sessionId: req.sessionId, tool: req.toolId, durationMs }, "tool call succeeded");
    return { success: true, result, metrics: { durationMs, hostMs: performance.now() - started } };
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
    signal.removeEventListener("abort", onAbort);
  }
}

function abortReason(signal: AbortSignal): BridgeError {
  return signal.reason instanceof BridgeError ? signal.reason : CANCELLED_BY_CLIENT();
}

export async function executeTool(
  rt: HostRuntime,
  req: pb.ToolCallRequest,
  call: grpc.ServerUnaryCall<pb.ToolCallRequest, pb.ToolCallResponse>,
): Promise<pb.ToolCallResponse> {
  const requestId = requestIdOf(req.requestId, call.metadata);
  const controller = new AbortController();
  const unsubscribe = abortOnCancel(call, controller);
  try {
    const outcome = await runCall(rt, req, {
      requestId,
      deadline: call.getDeadline(),
      signal: controller.signal,
      log: callLogger(rt, requestId),
    });
    return outcome.success
      ? { success: true, result: outcome.result, error: undefined, requestId, metrics: outcome.metrics }
      : { success: false, result: undefined, error: outcome.error, requestId, metrics: outcome.metrics };
  } finally {
    unsubscribe();
  }
}
