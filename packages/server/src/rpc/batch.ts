/**
 * BatchExecuteTools: many calls in one round trip. Each item runs exactly as an
 * ExecuteTool call would (validation, limits, timeout, metrics) and gets its own
 * result, tagged with its index, in request order.
 */
import type * as grpc from "@grpc/grpc-js";
import { BridgeError, ErrorType, type pb } from "@toolbridge/core";
import { errorInfo, type HostRuntime, newId } from "../runtime.js";
import {
  type CallOutcome,
  callLogger,
  cancelOnClientCancel,
  RpcCancellation,
  requestIdOf,
  runCall,
} from "./execute.js";

type BatchCall = grpc.ServerUnaryCall<pb.BatchToolCallRequest, pb.BatchToolCallResponse>;

/** Refuses a batch whose shape is wrong, before anything runs. */
function checkItems(rt: HostRuntime, items: readonly pb.ToolCallItem[]): void {
  const max = rt.config.maxBatchSize;
  if (items.length > max) {
    throw new BridgeError(
      ErrorType.ValidationError,
      `the batch has ${items.length} items, over the host's limit of ${max} (maxBatchSize); ` +
        "split it into smaller batches",
      { details: { field: "items", size: String(items.length), max_batch_size: String(max) } },
    );
  }
  const seen = new Set<number>();
  for (const item of items) {
    if (seen.has(item.index)) {
      throw new BridgeError(
        ErrorType.ValidationError,
        `two batch items have index ${item.index}; each item needs its own index to match it with its result`,
        { details: { field: "items.index", index: String(item.index) } },
      );
    }
    seen.add(item.index);
  }
}

function notRun(index: number, reason: BridgeError): pb.ToolCallResult {
  return {
    index,
    success: false,
    result: undefined,
    error: { type: reason.type, message: reason.message, details: reason.details, stacktrace: "" },
    metrics: { durationMs: 0, hostMs: 0 },
  };
}

function toResult(index: number, outcome: CallOutcome): pb.ToolCallResult {
  return outcome.success
    ? { index, success: true, result: outcome.result, error: undefined, metrics: outcome.metrics }
    : { index, success: false, result: undefined, error: outcome.error, metrics: outcome.metrics };
}

export async function batchExecuteTools(
  rt: HostRuntime,
  req: pb.BatchToolCallRequest,
  call: BatchCall,
): Promise<pb.BatchToolCallResponse> {
  const started = performance.now();
  const batchId = req.batchId || newId("batch");
  const requestId = requestIdOf(req.requestId, call.metadata, "batch");
  const log = callLogger(rt.log, { request_id: requestId, batch_id: batchId });
  const { items } = req;
  try {
    await rt.sessions.require(req.sessionId);
    checkItems(rt, items);
  } catch (error) {
    const info = errorInfo(rt, error);
    log.debug({ sessionId: req.sessionId, items: items.length, error: info.type }, "batch refused");
    return {
      success: false,
      error: info,
      batchId,
      results: [],
      metrics: { durationMs: 0, hostMs: performance.now() - started },
    };
  }
  rt.metrics.recordBatch(items.length);

  const parallel = req.config?.parallel === true;
  const stopOnError = req.config?.stopOnError === true;
  const width = parallel ? Math.min(items.length, req.config?.maxParallel || rt.config.batchMaxParallel) : 1;
  const deadline = call.getDeadline();
  const cancellation = new RpcCancellation();
  const unsubscribe = cancelOnClientCancel(call, cancellation);
  const results: (pb.ToolCallResult | undefined)[] = new Array(items.length);
  let next = 0;
  let failedIndex: number | undefined;

  // `width` workers pull items in request order; none starts an item once one failed
  // under stop_on_error or the client went away. Items already running finish.
  const worker = async () => {
    while (next < items.length && failedIndex === undefined && !cancellation.cancelled) {
      const position = next++;
      const item = items[position] as pb.ToolCallItem;
      const outcome = await runCall(
        rt,
        // Named fields, not a spread: spreading a decoded message was the loop's largest cost.
        {
          sessionId: req.sessionId,
          toolId: item.toolId,
          args: item.args,
          kwargs: item.kwargs,
          timeoutMs: item.timeoutMs,
        },
        {
          requestId: `${requestId}/${item.index}`,
          deadline,
          cancellation,
          log: callLogger(log, { item: item.index }),
          sessionChecked: true,
        },
      );
      results[position] = toResult(item.index, outcome);
      if (!outcome.success && stopOnError && failedIndex === undefined) failedIndex = item.index;
    }
  };
  try {
    await Promise.all(Array.from({ length: width }, worker));
  } finally {
    unsubscribe();
  }

  // Built only when an item did not run: constructing an error captures a stack.
  let skipped: BridgeError | undefined;
  const notRunReason = (): BridgeError => {
    skipped ??=
      failedIndex !== undefined
        ? new BridgeError(
            ErrorType.Cancelled,
            `not run: item ${failedIndex} failed and the batch has stop_on_error set`,
            { details: { reason: "stop_on_error", failed_index: String(failedIndex) } },
          )
        : (cancellation.reason ?? new BridgeError(ErrorType.Cancelled, "not run"));
    return skipped;
  };
  let durationMs = 0;
  // Array.from, not map: map skips the holes left by items that never ran.
  const complete = Array.from(results, (result, position) => {
    durationMs += result?.metrics?.durationMs ?? 0;
    return result ?? notRun((items[position] as pb.ToolCallItem).index, notRunReason());
  });
  const failures = complete.filter((r) => !r.success).length;
  log.debug({ sessionId: req.sessionId, items: items.length, failures, parallel, width }, "batch completed");
  return {
    success: true,
    error: undefined,
    batchId,
    results: complete,
    metrics: { durationMs, hostMs: performance.now() - started },
  };
}
