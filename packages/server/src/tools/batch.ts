/**
 * A batch: many calls in one request. Each item runs through the call engine exactly as
 * an ExecuteTool call would (validation, limits, timeout, metrics) and gets its own
 * result, tagged with its index, in request order. The session is looked up once.
 */
import { BridgeError, ErrorType, type pb } from "@toolbridge/core";
import type { Logger } from "pino";
import type { Principal } from "../auth/principal.js";
import {
  type CallContext,
  type CallOutcome,
  type CallRequest,
  type Cancellation,
  callLogger,
} from "./context.js";
import type { EngineHost } from "./engine-host.js";
import { errorInfo } from "./errors.js";

/** How a batch is carried: a CallContext shared by its items (the session is checked once). */
export interface BatchContext {
  /** Item `i` runs under the request id `<requestId>/<index>`. */
  readonly requestId: string;
  readonly deadline: number;
  /** Cancelling it aborts the items running and starts no more. */
  readonly cancellation: Cancellation;
  readonly log: Logger;
  /** Who is calling: the session must be this principal's. */
  readonly principal: Principal;
  /** The batch's request id when the client chose it: item `i` is then recorded under `<key>/<index>`. */
  readonly idempotencyKey?: string | undefined;
}

/**
 * The batch's results in request order (items never started are Cancelled results), with
 * the summed time of its tools; or the error that refused it before anything ran.
 */
export type BatchOutcome =
  | { readonly success: true; readonly results: pb.ToolCallResult[]; readonly durationMs: number }
  | { readonly success: false; readonly error: pb.ErrorInfo };

/** What a batch runs its items with: the engine's dependencies and its `call`. */
export interface BatchRunner extends EngineHost {
  call(req: CallRequest, ctx: CallContext): Promise<CallOutcome>;
}

/**
 * Runs a batch's items, at most `max_parallel` at once when parallel; never throws.
 * Fails as a whole only when refused before anything runs (unknown session, too many
 * items, two items with one index).
 */
export async function runBatch(
  engine: BatchRunner,
  req: pb.BatchToolCallRequest,
  ctx: BatchContext,
): Promise<BatchOutcome> {
  const { items } = req;
  let indexes: number[];
  try {
    await engine.sessions.require(req.sessionId, ctx.principal);
    indexes = itemIndexes(engine.config.maxBatchSize, items);
  } catch (error) {
    const info = errorInfo(engine, error);
    ctx.log.debug({ sessionId: req.sessionId, items: items.length, error: info.type }, "batch refused");
    return { success: false, error: info };
  }
  engine.metrics.recordBatch(items.length);
  const parallel = req.config?.parallel === true;
  const width = parallel
    ? Math.min(items.length, req.config?.maxParallel || engine.config.batchMaxParallel)
    : 1;
  const ran = await runItems(engine, req, ctx, indexes, width);
  let durationMs = 0;
  let failures = 0;
  const notRunError = notRunErrorOf(engine, ctx.cancellation, ran.failedIndex);
  // Array.from, not map: map skips the holes left by items that never ran.
  const results = Array.from(ran.results, (result, position) => {
    durationMs += result?.metrics?.durationMs ?? 0;
    if (result?.success !== true) failures++;
    return result ?? notRun(indexes[position] as number, notRunError());
  });
  ctx.log.debug(
    { sessionId: req.sessionId, items: items.length, failures, parallel, width },
    "batch completed",
  );
  return { success: true, results, durationMs };
}

/**
 * Runs the items: `width` workers pull them in request order; none starts an item once one
 * failed under stop_on_error or the client went away (items already running finish). Items
 * never started have no result.
 */
async function runItems(
  engine: BatchRunner,
  req: pb.BatchToolCallRequest,
  ctx: BatchContext,
  indexes: readonly number[],
  width: number,
): Promise<{ results: (pb.ToolCallResult | undefined)[]; failedIndex: number | undefined }> {
  const { items } = req;
  const stopOnError = req.config?.stopOnError === true;
  const { cancellation } = ctx;
  const results: (pb.ToolCallResult | undefined)[] = new Array(items.length);
  let next = 0;
  let failedIndex: number | undefined;
  const worker = async () => {
    while (next < items.length && failedIndex === undefined && !cancellation.cancelled) {
      const position = next++;
      const item = items[position] as pb.ToolCallItem;
      const index = indexes[position] as number;
      const outcome = await engine.call(
        // Named fields, not a spread: spreading a decoded message was the loop's largest cost.
        {
          sessionId: req.sessionId,
          toolId: item.toolId,
          args: item.args,
          kwargs: item.kwargs,
          timeoutMs: item.timeoutMs,
        },
        {
          requestId: `${ctx.requestId}/${index}`,
          deadline: ctx.deadline,
          cancellation,
          log: callLogger(ctx.log, { item: index }),
          principal: ctx.principal,
          sessionChecked: true,
          idempotencyKey: ctx.idempotencyKey === undefined ? undefined : `${ctx.idempotencyKey}/${index}`,
        },
      );
      results[position] = toResult(index, outcome);
      if (!outcome.success && stopOnError && failedIndex === undefined) failedIndex = index;
    }
  };
  await Promise.all(Array.from({ length: width }, worker));
  return { results, failedIndex };
}

/**
 * The error of the items that did not run, made once when first asked for: constructing
 * an error captures a stack, which a batch whose items all ran never pays for.
 */
function notRunErrorOf(
  engine: BatchRunner,
  cancellation: Cancellation,
  failedIndex: number | undefined,
): () => pb.ErrorInfo {
  let skipped: pb.ErrorInfo | undefined;
  return () => {
    skipped ??= errorInfo(
      engine,
      failedIndex !== undefined
        ? new BridgeError(
            ErrorType.Cancelled,
            `not run: item ${failedIndex} failed and the batch has stop_on_error set`,
            { details: { reason: "stop_on_error", failed_index: String(failedIndex) } },
          )
        : (cancellation.reason ?? new BridgeError(ErrorType.Cancelled, "not run")),
    );
    return skipped;
  };
}

/**
 * Each item's index: the one it carries, else its position. Refuses a batch over the
 * size limit or with two items of one index, before anything runs.
 */
function itemIndexes(max: number, items: readonly pb.ToolCallItem[]): number[] {
  if (items.length > max) {
    throw new BridgeError(
      ErrorType.ValidationError,
      `the batch has ${items.length} items, over the host's limit of ${max} (maxBatchSize); ` +
        "split it into smaller batches",
      { details: { field: "items", size: String(items.length), max_batch_size: String(max) } },
    );
  }
  const indexes: number[] = new Array(items.length);
  const seen = new Set<number>();
  for (let position = 0; position < items.length; position++) {
    const index = (items[position] as pb.ToolCallItem).index ?? position;
    if (seen.has(index)) {
      throw new BridgeError(
        ErrorType.ValidationError,
        `two batch items have index ${index} (an item without an index takes its position); ` +
          "give each item its own index, or leave every index out",
        { details: { field: "items.index", index: String(index) } },
      );
    }
    seen.add(index);
    indexes[position] = index;
  }
  return indexes;
}

function notRun(index: number, error: pb.ErrorInfo): pb.ToolCallResult {
  return {
    index,
    success: false,
    result: undefined,
    error,
    metrics: { durationMs: 0, hostMs: 0 },
  };
}

function toResult(index: number, outcome: CallOutcome): pb.ToolCallResult {
  return outcome.success
    ? { index, success: true, result: outcome.result, error: undefined, metrics: outcome.metrics }
    : { index, success: false, result: undefined, error: outcome.error, metrics: outcome.metrics };
}
