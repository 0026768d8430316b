/**
 * Tools this node does not have but another node serving the same sessions does: what the
 * engine needs of them, implemented on the wire by peers/forwarder.ts. With a store of this
 * process only there are none (the engine is given no RemoteTools).
 */
import type { BridgeError, pb, pbValues } from "@toolbridge/core";
import type { TraceCarrier } from "../tracing/contract.js";
import type { CallRequest } from "./context.js";

/** A session tool another node serves. */
export interface RemoteTool {
  readonly name: string;
  /** The node serving it. */
  readonly node: string;
  readonly spec: pb.ToolSpec;
}

/** Finds the session tools of other nodes and calls them there. */
export interface RemoteTools {
  /** The session tools other nodes serve, in name order. Rejects with Unavailable when the store is unreachable. */
  list(sessionId: string): Promise<RemoteTool[]>;
  /** The session tool `name` when another node serves it, else undefined. */
  find(sessionId: string, name: string): Promise<RemoteTool | undefined>;
  /**
   * One call of `tool` on its node, not started yet: the engine starts it with `run` or
   * `stream`, once, and may `abort` it at any time. `timeoutMs` is the call's whole budget;
   * `trace`, the W3C trace context the serving node continues (when the host traces).
   */
  call(
    tool: RemoteTool,
    req: CallRequest,
    requestId: string,
    timeoutMs: number,
    trace?: TraceCarrier,
  ): RemoteCall;
}

/** One call running on another node: what the engine's run step drives in place of a ToolInvocation. */
export interface RemoteCall {
  readonly tool: RemoteTool;
  /** Stops the call on the other node (its tool sees the abort); the pending `run` or `stream` rejects with `reason`. */
  abort(reason: BridgeError): void;
  /** Milliseconds since the call was made. */
  elapsedMs(): number;
  /** Runs it to its result, encoded and checked by the serving node; rejects with its BridgeError. */
  run(): Promise<pbValues.Value>;
  /** Runs it as a stream: its chunks, encoded and checked by the serving node; throws its BridgeError. */
  stream(): AsyncIterable<pbValues.Value>;
}
