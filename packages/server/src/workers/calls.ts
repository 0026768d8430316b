/** The wire side of a call to a worker: arguments in, results and stream chunks out. */
import * as grpc from "@grpc/grpc-js";
import { BridgeError, ErrorType, errorFromInfo, type pb, type pbValues } from "@toolbridge/core";
import type { ClientSpan, TraceCarrier, Tracing } from "../tracing/contract.js";
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

// Calls of a host that does not trace send no metadata; one empty instance serves them all.
const NO_METADATA = new grpc.Metadata();

/** Metadata carrying W3C trace context headers; the shared empty one without any. */
export function metadataOf(trace: TraceCarrier | undefined): grpc.Metadata {
  if (trace === undefined) return NO_METADATA;
  const entries = Object.entries(trace);
  if (entries.length === 0) return NO_METADATA;
  const metadata = new grpc.Metadata();
  for (const [key, value] of entries) metadata.set(key, value);
  return metadata;
}

const CALL_TOOL = "toolbridge.v1.ToolBridgeWorker/CallTool";
const STREAM_TOOL = "toolbridge.v1.ToolBridgeWorker/StreamTool";

/** The client span of a call to `worker`, under the active context (the calling tool's span). */
function workerSpan(tracing: Tracing | undefined, method: string, worker: PoolWorker, name: string) {
  return tracing?.clientSpan(method, {
    "gen_ai.tool.name": name,
    "toolbridge.worker": worker.name,
    "toolbridge.worker.pid": worker.pid,
  });
}

/** Ends `span` with the error a call failed with. */
function failed(span: ClientSpan | undefined, error: unknown): void {
  if (span === undefined) return;
  if (error instanceof BridgeError) span.end(error.type, error.message);
  else span.end(ErrorType.InternalError, String(error));
}

/**
 * Calls tool `name` on `worker`; resolves with its result as the worker encoded it. With
 * `tracing`, the call has a client span whose context the worker continues.
 */
export async function callOn(
  worker: PoolWorker,
  name: string,
  args: readonly pbValues.Value[],
  kwargs: Readonly<Record<string, pbValues.Value>>,
  options: EncodedCallOptions,
  tracing?: Tracing,
): Promise<pbValues.Value> {
  const request: pb.ToolCallRequest = {
    sessionId: options.sessionId ?? "",
    toolId: name,
    args: [...args],
    kwargs: { ...kwargs },
    requestId: options.requestId ?? "",
    timeoutMs: remainingMs(options.deadline),
  };
  const span = workerSpan(tracing, CALL_TOOL, worker, name);
  const metadata = metadataOf(span?.carrier());
  try {
    const response = await worker.unary<pb.ToolCallResponse>(
      name,
      (callback) => worker.client.callTool(request, metadata, callback),
      options.signal,
    );
    const result = resultValue(response);
    span?.end();
    return result;
  } catch (error) {
    failed(span, error);
    throw error;
  }
}

/** Streams tool `name` on `worker`: its chunks as the worker encoded them (traced as `callOn`). */
export async function* streamOn(
  worker: PoolWorker,
  name: string,
  args: readonly pbValues.Value[],
  kwargs: Readonly<Record<string, pbValues.Value>>,
  options: EncodedCallOptions,
  tracing?: Tracing,
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
  const span = workerSpan(tracing, STREAM_TOOL, worker, name);
  const metadata = metadataOf(span?.carrier());
  let ended = false;
  try {
    for await (const chunk of worker.stream(
      name,
      () => worker.client.streamTool(request, metadata),
      options.signal,
    )) {
      const value = chunkValue(chunk);
      if (value === undefined) {
        ended = true;
        span?.end();
        return;
      }
      yield value;
    }
    throw new BridgeError(ErrorType.Unavailable, `the stream of '${name}' ended without a complete chunk`, {
      details: { worker: worker.name, retriable: "true" },
    });
  } catch (error) {
    ended = true;
    failed(span, error);
    throw error;
  } finally {
    // The caller left the stream early (it stopped reading): the call was cancelled.
    if (!ended) span?.end(ErrorType.Cancelled, "the caller stopped reading the stream");
  }
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
