/**
 * The call engine. Every tool call (ExecuteTool, StreamTool, each item of a batch) takes
 * the same steps, so that all of them validate, limit, time out, count and log alike:
 *
 *   prepare  the session, the tool, its arguments bound and validated, the timeouts;
 *   admit    the tool's concurrency and rate limits;
 *   run      the tool to its result, or its chunks into a sink, each checked against
 *            the output schema and encoded by it (output.ts);
 *   finish   metrics, the log line, the failure as ErrorInfo, the permit released.
 *
 * The adapters in rpc/ only translate a grpc-js call into a `CallRequest` and a
 * `CallContext` and the outcome back into a response. What every call must do differently
 * belongs here, once: the caller's principal is checked where `checkSession` looks the
 * session up (another principal's session is SessionNotFound); a replayed request id is answered before `prepare` and recorded in
 * `finish`; a call run elsewhere (another node, a worker) replaces the ToolInvocation that
 * `run` drives; many calls on one RPC each get their own CallContext (cancellation, deadline).
 */
import { BridgeError, ErrorType, type pb, type pbValues } from "@toolbridge/core";
import type { Logger } from "pino";
import type { Principal } from "../auth/principal.js";
import { UNRESOLVED_TOOL } from "../metrics/metrics.js";
import { errorInfo, type HostRuntime } from "../runtime.js";
import { bindArguments } from "./args.js";
import type { Tool } from "./define.js";
import { ToolInvocation } from "./executor.js";
import { admit, type Permit } from "./limits.js";
import { checkOutput, encodeOutput } from "./output.js";

/** What a call asks for; the decoded ToolCallRequest, ToolStreamRequest or batch item. */
export interface CallRequest {
  readonly sessionId: string;
  readonly toolId: string;
  readonly args: readonly pbValues.Value[];
  readonly kwargs: Readonly<Record<string, pbValues.Value>>;
  /** The longest the call may run (a stream: its total budget); 0 uses the tool's. */
  readonly timeoutMs: number;
  /** A stream's longest wait for its next chunk; 0 or absent uses the tool's. */
  readonly idleTimeoutMs?: number;
}

/** How a call is carried: its id, its deadline, its cancellation and its logger. */
export interface CallContext {
  /** The id the tool sees (`ctx.requestId`). */
  readonly requestId: string;
  /** Epoch milliseconds by which the call must end (the gRPC deadline); Infinity for none. */
  readonly deadline: number;
  /** Cancelling it aborts the call; its reason becomes the call's error. */
  readonly cancellation: Cancellation;
  /** Per-call lines go here at debug level (see `callLogger`). */
  readonly log: Logger;
  /** Who is calling: the session must be this principal's. */
  readonly principal: Principal;
  /** The caller has looked the session up already (a batch does, once for all its items). */
  readonly sessionChecked?: boolean;
}

/** How a call ended: its encoded result or its error, with the host's timings either way. */
export type CallOutcome =
  | { readonly success: true; readonly result: pbValues.Value; readonly metrics: pb.ExecutionMetrics }
  | { readonly success: false; readonly error: pb.ErrorInfo; readonly metrics: pb.ExecutionMetrics };

/** How a stream ended, after `chunks` data chunks went into the sink. */
export type StreamOutcome =
  | { readonly success: true; readonly chunks: number; readonly metrics: pb.ExecutionMetrics }
  | { readonly success: false; readonly error: pb.ErrorInfo; readonly chunks: number };

/**
 * Takes a stream's encoded chunks in order. A returned promise is waited for before the
 * tool is asked for more (back-pressure; an abort ends the wait). Throwing refuses the
 * chunk and fails the call with that error (e.g. a chunk over the message limit).
 */
export type ChunkSink = (chunk: pbValues.Value, sequence: number) => Promise<void> | undefined;

/**
 * The cancellation of one call, or of several that end together (the items of a batch):
 * cancelling it aborts every call still running. Lighter than an AbortController and a
 * listener per call, which profiles showed as a large share of a small call's cost.
 */
export class Cancellation {
  reason: BridgeError | undefined;
  private readonly running = new Set<ToolInvocation>();

  get cancelled(): boolean {
    return this.reason !== undefined;
  }

  /** Aborts every attached call with `reason` and refuses calls not started yet; later calls are ignored. */
  cancel(reason: BridgeError): void {
    if (this.reason !== undefined) return;
    this.reason = reason;
    for (const invocation of this.running) invocation.abort(reason);
  }

  /** A running call that `cancel` must abort. */
  attach(invocation: ToolInvocation): void {
    this.running.add(invocation);
  }

  detach(invocation: ToolInvocation): void {
    this.running.delete(invocation);
  }
}

/**
 * A logger whose every line carries `bindings` (the call's request id, ...). Every
 * per-call line is at debug level, so below it the parent is returned as it is: a child
 * logger serializes its bindings, a cost per call that buys nothing when nothing is logged.
 */
export function callLogger(parent: Logger, bindings: Record<string, string | number>): Logger {
  return parent.isLevelEnabled("debug") ? parent.child(bindings) : parent;
}

/**
 * Rejects with SessionNotFound unless the session is live and `principal`'s to use; every
 * call's session check is this one.
 */
export function checkSession(rt: HostRuntime, sessionId: string, principal: Principal): Promise<unknown> {
  return rt.sessions.require(sessionId, principal);
}

/** Runs one call to its result (a streaming tool's chunks as one list); never throws. */
export async function runCall(rt: HostRuntime, req: CallRequest, ctx: CallContext): Promise<CallOutcome> {
  const call = new ToolCall(rt, req, ctx, false);
  try {
    if (ctx.sessionChecked !== true) await checkSession(rt, req.sessionId, ctx.principal);
    const result = await resultOf(call.start());
    return { success: true, result, metrics: call.finish(undefined) };
  } catch (error) {
    return call.fail(error);
  }
}

/** Runs one call as a stream, its chunks into `sink`; never throws. */
export async function runStream(
  rt: HostRuntime,
  req: CallRequest,
  ctx: CallContext,
  sink: ChunkSink,
): Promise<StreamOutcome> {
  const call = new ToolCall(rt, req, ctx, true);
  try {
    if (ctx.sessionChecked !== true) await checkSession(rt, req.sessionId, ctx.principal);
    await call.pump(call.start(), sink);
    return { success: true, chunks: call.chunks, metrics: call.finish(undefined) };
  } catch (error) {
    return { success: false, error: call.fail(error).error, chunks: call.chunks };
  }
}

/** The state of one call between its steps, and the one place where a call ends. */
class ToolCall {
  private readonly startedAt = performance.now();
  private invocation: ToolInvocation | undefined;
  private permit: Permit | undefined;
  /** Chunks the sink accepted. */
  chunks = 0;

  constructor(
    private readonly rt: HostRuntime,
    private readonly req: CallRequest,
    private readonly ctx: CallContext,
    private readonly streamed: boolean,
  ) {}

  /**
   * The rest of prepare once the session is checked, then admit: the invocation, attached
   * to the cancellation and holding a permit. Synchronous, so a call whose session was
   * checked already (a batch item) reaches its tool without waiting a turn.
   */
  start(): ToolInvocation {
    const { rt, req, ctx } = this;
    // The client may have gone while the session was looked up; do not start the tool then.
    if (ctx.cancellation.reason !== undefined) throw ctx.cancellation.reason;
    const invocation = prepare(rt, req, ctx);
    this.invocation = invocation;
    ctx.cancellation.attach(invocation);
    this.permit = admit(invocation.tool);
    return invocation;
  }

  /** The run step of a stream: pulls chunks only as fast as the sink takes them. */
  async pump(invocation: ToolInvocation, sink: ChunkSink): Promise<void> {
    const { tool } = invocation;
    const { cancellation } = this.ctx;
    const iterator = invocation.stream();
    try {
      for (;;) {
        const step = await iterator.next();
        // The client may have gone while the tool produced this chunk.
        if (cancellation.reason !== undefined) throw cancellation.reason;
        if (step.done) return;
        const chunk = encodeOutput(tool, checkOutput(tool, step.value, this.chunks), tool.outputGuide);
        const accepted = sink(chunk, this.chunks);
        this.chunks++;
        this.rt.metrics.recordStreamChunk(tool.name);
        if (accepted !== undefined) await invocation.waitFor(accepted);
      }
    } finally {
      iterator.close();
    }
  }

  /** The one finish step: counts the call, logs it and releases what it held; returns its metrics. */
  finish(error: pb.ErrorInfo | undefined): pb.ExecutionMetrics {
    const { rt, req, ctx, invocation } = this;
    // A call refused before it ran (validation, a limit) has no duration to observe.
    const durationMs =
      this.permit !== undefined && invocation !== undefined ? invocation.elapsedMs() : undefined;
    const tool =
      invocation?.tool.name ?? rt.tools.resolve(req.sessionId, req.toolId)?.name ?? UNRESOLVED_TOOL;
    const permit = this.permit;
    if (invocation?.running === true) {
      // The call ended (a timeout, a cancellation) but the tool ignored its signal and still
      // runs: it keeps its concurrency slot, and counts as overdue, until it really settles.
      rt.metrics.recordOverdue(tool, 1);
      invocation.whenSettled(() => {
        permit?.release();
        rt.metrics.recordOverdue(tool, -1);
      });
    } else {
      permit?.release();
    }
    if (invocation !== undefined) ctx.cancellation.detach(invocation);
    rt.metrics.recordCall(tool, error?.type, durationMs);
    if (error !== undefined) {
      ctx.log.debug(
        { sessionId: req.sessionId, tool: req.toolId, error: error.type, message: error.message },
        this.streamed ? "stream failed" : "tool call failed",
      );
    } else if (this.streamed) {
      ctx.log.debug(
        { sessionId: req.sessionId, tool: req.toolId, chunks: this.chunks, durationMs },
        "stream completed",
      );
    } else {
      ctx.log.debug({ sessionId: req.sessionId, tool: req.toolId, durationMs }, "tool call succeeded");
    }
    return { durationMs: durationMs ?? 0, hostMs: performance.now() - this.startedAt };
  }

  /** `finish` for a failure: the error as ErrorInfo, and the tool stopped if it still runs. */
  fail(error: unknown): { success: false; error: pb.ErrorInfo; metrics: pb.ExecutionMetrics } {
    const info = errorInfo(this.rt, error);
    // A failure the tool did not cause (an oversized chunk, a refused result) must still stop it.
    this.invocation?.abort(
      error instanceof BridgeError ? error : new BridgeError(ErrorType.InternalError, info.message),
    );
    return { success: false, error: info, metrics: this.finish(info) };
  }
}

/** The prepare step after the session check: the tool, its arguments and its timeouts. */
function prepare(rt: HostRuntime, req: CallRequest, ctx: CallContext): ToolInvocation {
  const tool = resolveTool(rt, req.sessionId, req.toolId);
  const args = bindArguments(tool, req.args, req.kwargs);
  const { config } = rt;
  let timeoutMs = tool.timeoutMs ?? (tool.streaming ? config.streamTotalTimeoutMs : config.toolTimeoutMs);
  if (req.timeoutMs > 0) timeoutMs = Math.min(timeoutMs, req.timeoutMs);
  if (Number.isFinite(ctx.deadline)) timeoutMs = Math.min(timeoutMs, Math.max(1, ctx.deadline - Date.now()));
  let idleTimeoutMs = 0;
  if (tool.streaming) {
    idleTimeoutMs = tool.idleTimeoutMs ?? config.streamIdleTimeoutMs;
    const requested = req.idleTimeoutMs ?? 0;
    if (requested > 0) idleTimeoutMs = Math.min(idleTimeoutMs, requested);
  }
  return new ToolInvocation(tool, args, {
    sessionId: req.sessionId,
    requestId: ctx.requestId,
    timeoutMs,
    idleTimeoutMs,
    exposeStackTraces: config.exposeStackTraces,
    faultScope: config.attributeToolFaults,
  });
}

/** The tool a session sees under `name`; ToolNotFound (listing the tools that exist) otherwise. */
export function resolveTool(rt: HostRuntime, sessionId: string, name: string): Tool {
  const tool = rt.tools.resolve(sessionId, name);
  if (tool !== undefined) return tool;
  const names = rt.tools.names(sessionId);
  const shown = names.slice(0, 20).join(", ") + (names.length > 20 ? ", ..." : "");
  throw new BridgeError(
    ErrorType.ToolNotFound,
    `no tool named '${name.slice(0, 200)}' in session '${sessionId}'; available: ${shown || "none"}`,
    { details: { tool: name.slice(0, 200) } },
  );
}

/** The run step of a plain call: the encoded result; a streaming tool's chunks are collected into a list. */
async function resultOf(invocation: ToolInvocation): Promise<pbValues.Value> {
  const { tool } = invocation;
  if (!tool.streaming) return encodeOutput(tool, checkOutput(tool, await invocation.run()), tool.outputGuide);
  const chunks: unknown[] = [];
  const iterator = invocation.stream();
  try {
    for (let step = await iterator.next(); !step.done; step = await iterator.next()) {
      chunks.push(checkOutput(tool, step.value, chunks.length));
    }
  } finally {
    iterator.close();
  }
  return encodeOutput(tool, chunks, tool.collectedGuide);
}
