/** ExecuteTool: one call through the engine, its outcome as a ToolCallResponse. */
import type * as grpc from "@grpc/grpc-js";
import type { pb } from "@toolbridge/core";
import type { Principal } from "../auth/principal.js";
import type { HostRuntime } from "../runtime.js";
import { runCall } from "../tools/call.js";
import { contextOf, requestIdOf } from "./call-context.js";

export async function executeTool(
  rt: HostRuntime,
  req: pb.ToolCallRequest,
  call: grpc.ServerUnaryCall<pb.ToolCallRequest, pb.ToolCallResponse>,
  principal: Principal,
): Promise<pb.ToolCallResponse> {
  const requestId = requestIdOf(req.requestId, call.metadata);
  const ctx = contextOf(rt, call, requestId, { request_id: requestId }, principal);
  try {
    const outcome = await runCall(rt, req, ctx);
    return outcome.success
      ? { success: true, result: outcome.result, error: undefined, requestId, metrics: outcome.metrics }
      : { success: false, result: undefined, error: outcome.error, requestId, metrics: outcome.metrics };
  } finally {
    ctx.release();
  }
}
