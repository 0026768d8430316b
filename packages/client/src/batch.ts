/** Client side of BatchExecuteTools: encoding the items and reading results back in order. */
import {
  BridgeError,
  type DecodeOptions,
  decodeValue,
  ErrorType,
  encodeArgs,
  encodeKwargs,
  errorFromInfo,
  type NativeValue,
  type pb,
} from "@toolbridge/core";

export interface BatchItem {
  readonly toolId: string;
  readonly kwargs?: Readonly<Record<string, unknown>>;
  /** Positional arguments, bound to the tool's parameters in order. */
  readonly args?: readonly unknown[];
  /** Per-item timeout; the host also bounds every item by the batch's deadline. */
  readonly timeoutMs?: number;
}

export interface BatchOptions {
  /** Run items concurrently (default true, as in the Python client). */
  parallel?: boolean;
  /** Once an item fails, start no more; those not started come back as Cancelled errors. */
  stopOnError?: boolean;
  /** Most items running at once when parallel; 0 or unset uses the host's batchMaxParallel. */
  maxParallel?: number;
  /**
   * Timeout of each item that sets none, and (plus a second's slack) the gRPC deadline
   * of the whole batch. The items' timeouts fire first, so the answer still arrives with
   * per-item Timeout errors rather than as a DEADLINE_EXCEEDED for the whole batch.
   */
  timeoutMs?: number;
  /** Cancels the batch; the host aborts the items running and starts no more. */
  signal?: AbortSignal;
  /**
   * The batch's idempotency key: item i is recorded under `<requestId>/<index>`, so the
   * batch sent again replays the items that completed; an item with another tool or other
   * arguments than the one recorded under its id fails with RequestIdReused (docs/replay.md).
   */
  requestId?: string;
  batchId?: string;
}

export function encodeItems(items: readonly BatchItem[], defaultTimeoutMs = 0): pb.ToolCallItem[] {
  // No index is sent: the host takes an item's position as its index, and results come back with it.
  return items.map((item, index) => {
    try {
      return {
        index: undefined,
        toolId: item.toolId,
        args: encodeArgs(item.args ?? []),
        kwargs: encodeKwargs(item.kwargs ?? {}),
        timeoutMs: item.timeoutMs ?? defaultTimeoutMs,
      };
    } catch (error) {
      if (error instanceof BridgeError) {
        throw new BridgeError(error.type, `batch item ${index} ('${item.toolId}'): ${error.message}`, {
          details: { ...error.details, index: String(index) },
        });
      }
      throw error;
    }
  });
}

/**
 * Results in request order: the decoded value of each item that succeeded, a
 * BridgeError (with details.tool and details.index) in place of each that failed.
 */
export function decodeResults(
  items: readonly BatchItem[],
  response: pb.BatchToolCallResponse,
  decodeOptions: DecodeOptions,
): (NativeValue | BridgeError)[] {
  const out: (NativeValue | BridgeError)[] = new Array(items.length);
  const filled = new Set<number>();
  for (const result of response.results) {
    const item = items[result.index];
    if (item === undefined || filled.has(result.index)) {
      throw new BridgeError(
        ErrorType.InternalError,
        `the host answered a batch of ${items.length} items with a result for index ${result.index}`,
      );
    }
    filled.add(result.index);
    if (result.success) {
      out[result.index] = decodeValue(result.result, decodeOptions);
    } else {
      const error = errorFromInfo(result.error, "the host reported a failed item without saying why");
      out[result.index] = new BridgeError(error.type, error.message, {
        details: { ...error.details, tool: item.toolId, index: String(result.index) },
      });
    }
  }
  for (let index = 0; index < items.length; index++) {
    if (!filled.has(index)) {
      out[index] = new BridgeError(
        ErrorType.InternalError,
        `the host sent no result for batch item ${index}`,
        {
          details: { tool: items[index]?.toolId ?? "", index: String(index) },
        },
      );
    }
  }
  return out;
}
