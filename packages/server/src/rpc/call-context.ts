/**
 * A grpc-js call in the call engine's terms: its request id, its deadline and its
 * cancellation. Shared by the ExecuteTool, StreamTool and BatchExecuteTools adapters.
 */
import type * as grpc from "@grpc/grpc-js";
import { BridgeError, ErrorType } from "@toolbridge/core";
import type { Principal } from "../auth/principal.js";
import { FORWARDED_HEADER } from "../peers/forwarder.js";
import { type CallContext, Cancellation, callLogger } from "../tools/engine.js";
import type { RpcHost } from "./rpc-host.js";

const MAX_REQUEST_ID = 128;

/**
 * The request id the client chose: the one in the message, else the `x-request-id` metadata
 * header (what HTTP gateways and tracing proxies set); undefined when it chose none.
 */
export function chosenRequestId(fromMessage: string, metadata: grpc.Metadata): string | undefined {
  if (fromMessage !== "") return fromMessage.slice(0, MAX_REQUEST_ID);
  const header = metadata.get("x-request-id")[0];
  if (typeof header === "string" && header !== "") return header.slice(0, MAX_REQUEST_ID);
  return undefined;
}

/** A gRPC deadline as epoch milliseconds; Infinity when the call has none. */
export function deadlineOf(call: { getDeadline(): grpc.Deadline }): number {
  const deadline = call.getDeadline();
  return deadline instanceof Date ? deadline.getTime() : deadline;
}

/**
 * The host's copy of a deadline runs later than the client's by the time the request spent
 * on the wire and in queues, so the client's cancel at its own deadline can arrive a little
 * before the host's: a cancel within this much (at most a quarter of the call's time) of the
 * deadline is the deadline passing.
 */
const DEADLINE_SLACK_MS = 1000;

/**
 * Why a call's tools are aborted when grpc-js reports the call cancelled: its deadline
 * passed (a Timeout, as the tool's own timer would have said a moment later) or the
 * client really cancelled or went away. `since` is when the call arrived.
 */
export function cancellationReason(deadline: number, since: number): BridgeError {
  if (Number.isFinite(deadline)) {
    const slack = Math.min(DEADLINE_SLACK_MS, Math.max(0, deadline - since) / 4);
    if (Date.now() >= deadline - slack) {
      return new BridgeError(ErrorType.Timeout, "the call's gRPC deadline passed", {
        details: { timeout: "deadline" },
      });
    }
  }
  return new BridgeError(ErrorType.Cancelled, "the client cancelled the call or went away");
}

/** A CallContext tied to a grpc-js call; `release` it when the call is done. */
export interface WireContext extends CallContext {
  release(): void;
}

/**
 * The engine's context for a grpc-js call by `principal`: the call's deadline, a
 * Cancellation that fires (with the right reason) when grpc-js reports the call
 * cancelled, and a logger whose lines carry `bindings`. `chosen`, the request id the client
 * chose (see `chosenRequestId`), is the call's idempotency key, unless another node
 * forwarded the call (that node records it); a call not recorded passes none.
 */
export function contextOf(
  host: RpcHost,
  call: {
    once(event: "cancelled", listener: () => void): unknown;
    removeListener(event: "cancelled", listener: () => void): unknown;
    getDeadline(): grpc.Deadline;
    readonly metadata: grpc.Metadata;
  },
  requestId: string,
  bindings: Record<string, string>,
  principal: Principal,
  chosen?: string,
): WireContext {
  const cancellation = new Cancellation();
  const arrived = Date.now();
  const onCancelled = () => cancellation.cancel(cancellationReason(deadlineOf(call), arrived));
  call.once("cancelled", onCancelled);
  const forwarded = call.metadata.get(FORWARDED_HEADER).length > 0;
  return {
    requestId,
    deadline: deadlineOf(call),
    cancellation,
    log: callLogger(host.log, bindings),
    principal,
    idempotencyKey: forwarded ? undefined : chosen,
    forwarded,
    release: () => call.removeListener("cancelled", onCancelled),
  };
}
