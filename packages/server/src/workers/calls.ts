/** The wire side of a call to a worker: arguments in, results and stream chunks out. */
import * as grpc from "@grpc/grpc-js";
import { BridgeError, ErrorType, errorFromInfo, type pb, type pbValues } from "@toolbridge/core";
import type { PoolWorker } from "./worker.js";

/** A call of `callEncoded` / `streamEncoded`: the caller owns its timeout and says when it ends. */
export interface EncodedCallOptions {
  /** Aborting cancels the call on the worker; the caller's timeout aborts it. */
  signal?: AbortSignal;
  /**
   * Epoch ms by which the caller ends the call (Infinity or unset: no limit). The worker is told,
   * and stops a call still running a moment after it, should the cancellation never come.
   */
  deadline?: number;
  affinity?: string;
  sessionId?: string;
  requestId?: string;
}

// Calls send no metadata; one empty instance serves them all.
const metadata = new grpc.Metadata();

/** Calls tool `name` on `worker`; resolves with its result as the worker encoded it. */
export async function callOn(
  worker: PoolWorker,
  name: string,
  args: readonly pbValues.Value[],
  kwargs: Readonly<Record<string, pbValues.Value>>,
  options: EncodedCallOptions,
): Promise<pbValues.Value> {
  const request: pb.ToolCallRequest = {
    sessionId: options.sessionId ?? "",
    toolId: name,
    args: [...args],
    kwargs: { ...kwargs },
    requestId: options.requestId ?? "",
    timeoutMs: remainingMs(options.deadline),
  };
  const response = await worker.unary<pb.ToolCallResponse>(
    name,
    (callback) => worker.client.callTool(request, metadata, callback),
    options.signal,
  );
  return resultValue(response);
}

/** Streams tool `name` on `worker`: its chunks as the worker encoded them. */
export async function* streamOn(
  worker: PoolWorker,
  name: string,
  args: readonly pbValues.Value[],
  kwargs: Readonly<Record<string, pbValues.Value>>,
  options: EncodedCallOptions,
): AsyncGenerator<pbValues.Value, void, undefined> {
  const request: pb.ToolStreamRequest = {
    sessionId: options.sessionId ?? "",
    toolId: name,
    args: [...args],
    kwargs: { ...kwargs },
    streamId: "",
    requestId: options.requestId ?? "",
    // The whole stream's budget; its idle timeout stays with the caller.
    timeoutMs: remainingMs(options.deadline),
    idleTimeoutMs: 0,
  };
  for await (const chunk of worker.stream(name, () => worker.client.streamTool(request), options.signal)) {
    const value = chunkValue(chunk);
    if (value === undefined) return;
    yield value;
  }
  throw new BridgeError(ErrorType.Unavailable, `the stream of '${name}' ended without a complete chunk`, {
    details: { worker: worker.name, retriable: "true" },
  });
}

/** `deadline` when it is a time (not Infinity or unset). */
export function finite(deadline: number | undefined): number | undefined {
  return deadline !== undefined && Number.isFinite(deadline) ? deadline : undefined;
}

/** The time left before `deadline` as a request's `timeout_ms`: 0 for none, else at least 1. */
function remainingMs(deadline: number | undefined): number {
  const at = finite(deadline);
  return at === undefined ? 0 : Math.min(Math.max(1, Math.ceil(at - Date.now())), 2 ** 32 - 1);
}

/** A response's encoded result; an in-band failure throws its BridgeError. */
export function resultValue(response: pb.ToolCallResponse): pbValues.Value {
  if (!response.success) throw errorFromInfo(response.error, WITHOUT_ERROR);
  return response.result ?? NULL;
}

/** A data chunk's encoded value, or undefined for the complete chunk; an error chunk throws. */
export function chunkValue(chunk: pb.ToolStreamChunk): pbValues.Value | undefined {
  const content = chunk.content;
  if (content?.$case === "data") return content.value;
  if (content?.$case === "error") throw errorFromInfo(content.value, WITHOUT_ERROR);
  return undefined;
}

const WITHOUT_ERROR = "the worker reported a failure without saying which";
const NULL: pbValues.Value = { kind: { $case: "nullValue", value: 0 } };
