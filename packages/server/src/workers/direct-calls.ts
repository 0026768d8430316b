/**
 * Calls of the pool's tools made directly (`host.workers.call` / `streamCall`) rather than
 * through the host: each runs as a ToolInvocation, the call engine's own, so that its timeouts
 * (total, a stream's idle one, the tool's `timeout_ms`) are kept exactly as for a call through
 * the host, by the same code. The worker only hears the deadline, as a backstop.
 */
import { type DecodeOptions, decodeValue, type NativeValue, type pbValues } from "@toolbridge/core";
import type { ToolContext } from "../tools/define.js";
import { type Invocable, ToolInvocation } from "../tools/executor.js";
import type { EncodedCallOptions } from "./calls.js";
import { abortError } from "./worker.js";

/** Options of one call through the pool. */
export interface PoolCallOptions {
  /** Positional arguments, bound to the tool's parameters in order. */
  args?: readonly unknown[];
  /**
   * Longest the call may take (a stream: its whole run, its total budget); 0 none; default the
   * pool's `callTimeoutMs`. The tool's own `timeout_ms` shortens it.
   */
  timeoutMs?: number;
  /** A stream's longest wait for its next chunk (its idle timeout); 0 or unset: none. */
  idleTimeoutMs?: number;
  /** Aborting cancels the call; the Python function sees the cancellation. */
  signal?: AbortSignal;
  /** Calls with the same key go to the same worker while it lives, e.g. a session id. */
  affinity?: string;
  /** The session the call is made for, as the Python tool's context reports it. */
  sessionId?: string;
  requestId?: string;
  /** How results are decoded, e.g. `{ maps: "map" }` to keep the order of integer-like keys. */
  decode?: DecodeOptions;
}

/** Runs `encoded` (the pool's encoded call) to its decoded result within `timeoutMs` (0: none). */
export async function invokeCall(
  name: string,
  timeoutMs: number,
  options: PoolCallOptions,
  encoded: (options: EncodedCallOptions) => Promise<pbValues.Value>,
): Promise<NativeValue> {
  const invocation = invocationOf(name, false, timeoutMs, options, encoded);
  const detach = abortWith(invocation, options.signal);
  try {
    return decodeValue((await invocation.run()) as pbValues.Value, options.decode);
  } finally {
    detach();
  }
}

/** Streams `encoded`'s chunks decoded, within the total budget `timeoutMs` and the idle timeout. */
export async function* invokeStream(
  name: string,
  timeoutMs: number,
  options: PoolCallOptions,
  encoded: (options: EncodedCallOptions) => AsyncIterable<pbValues.Value>,
): AsyncGenerator<NativeValue, void, undefined> {
  const invocation = invocationOf(name, true, timeoutMs, options, encoded);
  const detach = abortWith(invocation, options.signal);
  const chunks = invocation.stream();
  try {
    for (let step = await chunks.next(); !step.done; step = await chunks.next()) {
      yield decodeValue(step.value as pbValues.Value, options.decode);
    }
  } finally {
    // Leaving early closes the encoded stream, which cancels the call on the worker.
    chunks.close();
    detach();
  }
}

function invocationOf(
  name: string,
  streaming: boolean,
  timeoutMs: number,
  options: PoolCallOptions,
  encoded: (options: EncodedCallOptions) => unknown,
): ToolInvocation<Invocable> {
  const handler = (_args: Record<string, unknown>, ctx: ToolContext) =>
    encoded({
      signal: ctx.signal,
      deadline: ctx.deadline,
      affinity: options.affinity,
      sessionId: options.sessionId,
      requestId: options.requestId,
    });
  return new ToolInvocation(
    { name, streaming, handler },
    {},
    {
      sessionId: options.sessionId ?? "",
      requestId: options.requestId ?? "",
      timeoutMs,
      idleTimeoutMs: options.idleTimeoutMs ?? 0,
      exposeStackTraces: false,
    },
  );
}

/** Aborts `invocation` when `signal` does; returns what removes the listener. */
function abortWith(invocation: ToolInvocation<Invocable>, signal: AbortSignal | undefined): () => void {
  if (signal === undefined) return () => {};
  const onAbort = () => invocation.abort(abortError(signal));
  if (signal.aborted) onAbort();
  else signal.addEventListener("abort", onAbort, { once: true });
  return () => signal.removeEventListener("abort", onAbort);
}
