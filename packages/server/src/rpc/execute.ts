/**
 * ExecuteTool: one call through the engine, its outcome as a ToolCallResponse. A request id
 * the client chose is the call's idempotency key (tools/replay.ts).
 */
import type * as grpc from "@grpc/grpc-js";
import type { pb } from "@toolbridge/core";
import type { Principal } from "../auth/principal.js";
import { type CallOutcome, newId } from "../tools/engine.js";
import { chosenRequestId, contextOf } from "./call-context.js";
import type { RpcHost } from "./rpc-host.js";

export async function executeTool(
  host: RpcHost,
  req: pb.ToolCallRequest,
  call: grpc.ServerUnaryCall<pb.ToolCallRequest, pb.ToolCallResponse>,
  principal: Principal,
): Promise<pb.ToolCallResponse> {
  const chosen = chosenRequestId(req.requestId, call.metadata);
  const requestId = chosen ?? newId("req");
  const ctx = contextOf(host, call, requestId, { request_id: requestId }, principal, chosen);
  try {
    return responseOf(await host.engine.call(req, ctx), requestId);
  } finally {
    ctx.release();
  }
}

/** A call's outcome as the ToolCallResponse of ExecuteTool and of Calls. */
export function responseOf(outcome: CallOutcome, requestId: string): pb.ToolCallResponse {
  return outcome.success
    ? { success: true, result: outcome.result, error: undefined, requestId, metrics: outcome.metrics }
    : { success: false, result: undefined, error: outcome.error, requestId, metrics: outcome.metrics };
}
