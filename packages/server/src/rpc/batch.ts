/** BatchExecuteTools: the batch runs in the engine (tools/batch.ts); this adapts the wire. */
import type * as grpc from "@grpc/grpc-js";
import type { pb } from "@toolbridge/core";
import type { Principal } from "../auth/principal.js";
import { newId } from "../tools/engine.js";
import { chosenRequestId, contextOf } from "./call-context.js";
import type { RpcHost } from "./rpc-host.js";

type BatchCall = grpc.ServerUnaryCall<pb.BatchToolCallRequest, pb.BatchToolCallResponse>;

export async function batchExecuteTools(
  host: RpcHost,
  req: pb.BatchToolCallRequest,
  call: BatchCall,
  principal: Principal,
): Promise<pb.BatchToolCallResponse> {
  const started = performance.now();
  const batchId = req.batchId || newId("batch");
  const chosen = chosenRequestId(req.requestId, call.metadata);
  const requestId = chosen ?? newId("batch");
  const ctx = contextOf(
    host,
    call,
    requestId,
    { request_id: requestId, batch_id: batchId },
    principal,
    chosen,
  );
  try {
    const outcome = await host.engine.batch(req, ctx);
    const hostMs = performance.now() - started;
    return outcome.success
      ? {
          success: true,
          error: undefined,
          batchId,
          results: outcome.results,
          metrics: { durationMs: outcome.durationMs, hostMs },
        }
      : { success: false, error: outcome.error, batchId, results: [], metrics: { durationMs: 0, hostMs } };
  } finally {
    ctx.release();
  }
}
