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
 * session up (another principal's session is SessionNotFound); a replayed request id is
 * answered before `prepare` and recorded in `finish` (replay.ts); a call run on another
 * node replaces the ToolInvocation that `run` drives (forward.ts); many calls on one RPC
 * each get their own CallContext (cancellation, deadline).
 */
import { BridgeError, ErrorType, pb, type pbValues } from "@toolbridge/core";
import type { Logger } from "pino";
import type { Principal } from "../auth/principal.js";
import type { HostConfig } from "../config.js";
import { GRPC_PROTOCOL, UNRESOLVED_TOOL } from "../metrics/metrics.js";
import { errorInfo, type HostRuntime } from "../runtime.js";
import { bindArguments } from "./args.js";
import type { Tool } from "./define.js";
import { ToolInvocation } from "./executor.js";
import { ForwardedCall } from "./forward.js";
import { admit, type Permit } from "./limits.js";
import { checkOutput, encodeChunks, encodeOutput } from "./output.js";
import { isClaim, isRecordable, type ReplayClaim } from "./replay.js";

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
  /**
   * The request id the client chose (not one the host made up): a retry under it is
   * answered with this call's recorded outcome (replay.ts). Absent: nothing is recorded.
   */
  readonly idempotencyKey?: string;
  /** This call was forwarded by another node, which records it and must not get it back. */
  readonly forwarded?: boolean;
  /** What the call came over, for the metrics' `protocol` label; absent: gRPC. */
  readonly protocol?: string;
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
  private readonly running = new Set<{ abort(reason: BridgeError): void }>();
  private cancelled$: Promise<never> | undefined;
  private reject: ((reason: BridgeError) => void) | undefined;

  get cancelled(): boolean {
    return this.reason !== undefined;
  }

  /** Aborts every attached call with `reason` and refuses calls not started yet; later calls are ignored. */
  cancel(reason: BridgeError): void {
    if (this.reason !== undefined) return;
    this.reason = reason;
    for (const invocation of this.running) invocation.abort(reason);
    this.reject?.(reason);
  }

  /** A running call that `cancel` must abort (a ToolInvocation, or a call forwarded to another node). */
  attach(invocation: { abort(reason: BridgeError): void }): void {
    this.running.add(invocation);
  }

  detach(invocation: { abort(reason: BridgeError): void }): void {
    this.running.delete(invocation);
  }

  /** Rejects with the reason once cancelled; for waits that are not a running call (a replay's). */
  whenCancelled(): Promise<never> {
    if (this.cancelled$ === undefined) {
      this.cancelled$ = new Promise<never>((_, reject) => {
        if (this.reason !== undefined) reject(this.reason);
        this.reject = reject;
      });
      this.cancelled$.catch(() => {});
    }
    return this.cancelled$;
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
  let claim: ReplayClaim | undefined;
  let outcome: CallOutcome;
  try {
    if (ctx.sessionChecked !== true) await checkSession(rt, req.sessionId, ctx.principal);
    if (ctx.idempotencyKey !== undefined && rt.replay !== undefined) {
      const budget = timeoutOf(rt, rt.tools.resolve(req.sessionId, req.toolId), req, ctx);
      const begun = await rt.replay.begin(req, ctx.idempotencyKey, budget, ctx.cancellation);
      if (!isClaim(begun)) return call.replayed(begun);
      claim = begun;
    }
    const started = call.start();
    const running = started instanceof Promise ? await started : started;
    const result = running instanceof ForwardedCall ? await running.run() : await resultOf(running);
    outcome = { success: true, result, metrics: call.finish(undefined) };
  } catch (error) {
    outcome = call.fail(error);
  }
  if (claim !== undefined) await claim.settle(outcome, isRecordable(outcome, call.ran));
  return outcome;
}

/** Runs one call as a stream, its chunks into `sink`; never throws. Streams are not recorded for replay. */
export async function runStream(
  rt: HostRuntime,
  req: CallRequest,
  ctx: CallContext,
  sink: ChunkSink,
): Promise<StreamOutcome> {
  const call = new ToolCall(rt, req, ctx, true);
  try {
    if (ctx.sessionChecked !== true) await checkSession(rt, req.sessionId, ctx.principal);
    const started = call.start();
    await call.pump(started instanceof Promise ? await started : started, sink);
    return { success: true, chunks: call.chunks, metrics: call.finish(undefined) };
  } catch (error) {
    return { success: false, error: call.fail(error).error, chunks: call.chunks };
  }
}

/** What the run step drives: the tool here, or a call of it on the node that serves it. */
type Running = ToolInvocation | ForwardedCall;

/** The state of one call between its steps, and the one place where a call ends. */
class ToolCall {
  private readonly startedAt = performance.now();
  private running: Running | undefined;
  private permit: Permit | undefined;
  /** Chunks the sink accepted. */
  chunks = 0;

  constructor(
    private readonly rt: HostRuntime,
    private readonly req: CallRequest,
    private readonly ctx: CallContext,
    private readonly streamed: boolean,
  ) {}

  /** Whether the tool was started (admitted here, or sent to the node serving it). */
  get ran(): boolean {
    return this.permit !== undefined || this.running instanceof ForwardedCall;
  }

  /**
   * The rest of prepare once the session is checked, then admit: the invocation, attached
   * to the cancellation and holding a permit. Synchronous for a tool of this node without a
   * shared rate limit, so a call whose session was checked already (a batch item) reaches
   * its tool without waiting a turn; a shared rate limit or a tool of another node is async.
   */
  start(): Running | Promise<Running> {
    const { rt, req, ctx } = this;
    // The client may have gone while the session was looked up; do not start the tool then.
    if (ctx.cancellation.reason !== undefined) throw ctx.cancellation.reason;
    const tool = rt.tools.resolve(req.sessionId, req.toolId);
    if (tool === undefined) return this.startElsewhere();
    const invocation = prepare(rt, tool, req, ctx);
    this.running = invocation;
    ctx.cancellation.attach(invocation);
    const shared = rt.sharedRate !== undefined && rt.tools.isGlobal(tool) ? rt.sharedRate : undefined;
    const permit = admit(tool, shared);
    if (!(permit instanceof Promise)) {
      this.permit = permit;
      return invocation;
    }
    return permit.then((admitted) => {
      this.permit = admitted;
      return invocation;
    });
  }

  /** A tool this node does not have: forwarded to the node serving it, else ToolNotFound. */
  private async startElsewhere(): Promise<Running> {
    const { rt, req, ctx } = this;
    const remote =
      rt.forwarder !== undefined && ctx.forwarded !== true
        ? await rt.forwarder.find(req.sessionId, req.toolId)
        : undefined;
    if (remote === undefined || rt.forwarder === undefined) throw toolNotFound(rt, req.sessionId, req.toolId);
    if (ctx.cancellation.reason !== undefined) throw ctx.cancellation.reason;
    const streaming = remote.spec.type === pb.ToolType.TOOL_TYPE_STREAMING;
    const declared = remote.spec.limits?.timeoutMs || undefined;
    const timeoutMs = withinCall(defaultBudgetMs(rt.config, declared, streaming), req, ctx);
    const forwarded = rt.forwarder.call(remote, req, ctx.requestId, timeoutMs);
    this.running = forwarded;
    ctx.cancellation.attach(forwarded);
    return forwarded;
  }

  /** The run step of a stream: pulls chunks only as fast as the sink takes them. */
  async pump(running: Running, sink: ChunkSink): Promise<void> {
    if (running instanceof ForwardedCall) return this.pumpForwarded(running, sink);
    const invocation = running;
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

  /** A stream of another node: its chunks arrive encoded and checked already. */
  private async pumpForwarded(forwarded: ForwardedCall, sink: ChunkSink): Promise<void> {
    const { cancellation } = this.ctx;
    for await (const chunk of forwarded.stream()) {
      if (cancellation.reason !== undefined) throw cancellation.reason;
      const accepted = sink(chunk, this.chunks);
      this.chunks++;
      this.rt.metrics.recordStreamChunk(forwarded.tool.name);
      if (accepted !== undefined) await Promise.race([accepted, cancellation.whenCancelled()]);
    }
  }

  /** The outcome of a call answered from its record: nothing ran, only the host's time is new. */
  replayed(outcome: CallOutcome): CallOutcome {
    const { req, ctx } = this;
    ctx.log.debug({ sessionId: req.sessionId, tool: req.toolId, success: outcome.success }, "call replayed");
    this.rt.metrics.recordReplay(outcome.success ? undefined : outcome.error.type);
    const metrics = { durationMs: outcome.metrics.durationMs, hostMs: performance.now() - this.startedAt };
    return { ...outcome, metrics };
  }

  /** The one finish step: counts the call, logs it and releases what it held; returns its metrics. */
  finish(error: pb.ErrorInfo | undefined): pb.ExecutionMetrics {
    const { rt, req, ctx, running } = this;
    // A call refused before it ran (validation, a limit) has no duration to observe.
    const durationMs = running !== undefined && this.ran ? running.elapsedMs() : undefined;
    const tool = running?.tool.name ?? rt.tools.resolve(req.sessionId, req.toolId)?.name ?? UNRESOLVED_TOOL;
    const permit = this.permit;
    if (running instanceof ToolInvocation && running.running) {
      // The call ended (a timeout, a cancellation) but the tool ignored its signal and still
      // runs: it keeps its concurrency slot, and counts as overdue, until it really settles.
      rt.metrics.recordOverdue(tool, 1);
      running.whenSettled(() => {
        permit?.release();
        rt.metrics.recordOverdue(tool, -1);
      });
    } else {
      permit?.release();
    }
    if (running !== undefined) ctx.cancellation.detach(running);
    if (running instanceof ToolInvocation) running.end(error?.type);
    const hostMs = performance.now() - this.startedAt;
    rt.metrics.recordCall({
      tool,
      sessionId: req.sessionId,
      requestId: ctx.requestId,
      principal: ctx.principal.name,
      streamed: this.streamed,
      protocol: ctx.protocol ?? GRPC_PROTOCOL,
      durationMs,
      hostMs,
      error,
    });
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
    return { durationMs: durationMs ?? 0, hostMs };
  }

  /** `finish` for a failure: the error as ErrorInfo, and the tool stopped if it still runs. */
  fail(error: unknown): { success: false; error: pb.ErrorInfo; metrics: pb.ExecutionMetrics } {
    const info = errorInfo(this.rt, error);
    // A failure the tool did not cause (an oversized chunk, a refused result) must still stop it.
    this.running?.abort(
      error instanceof BridgeError ? error : new BridgeError(ErrorType.InternalError, info.message),
    );
    return { success: false, error: info, metrics: this.finish(info) };
  }
}

/**
 * The longest a call of a tool may run before the call's own limits shorten it: the tool's
 * declared timeoutMs, else the host's default for its kind (streamTotalTimeoutMs for a
 * streaming tool, its whole stream; toolTimeoutMs for a plain one). The one rule for a tool
 * of this node and for one another node serves, whose call is forwarded with this budget.
 */
export function defaultBudgetMs(
  config: Pick<HostConfig, "toolTimeoutMs" | "streamTotalTimeoutMs">,
  declared: number | undefined,
  streaming: boolean,
): number {
  return declared ?? (streaming ? config.streamTotalTimeoutMs : config.toolTimeoutMs);
}

/**
 * The longest a call may run: the tool's budget (defaultBudgetMs), shortened by the call's
 * own timeout_ms and by its gRPC deadline. The host's default without a tool.
 */
function timeoutOf(rt: HostRuntime, tool: Tool | undefined, req: CallRequest, ctx: CallContext): number {
  return withinCall(defaultBudgetMs(rt.config, tool?.timeoutMs, tool?.streaming ?? false), req, ctx);
}

/** `timeoutMs` shortened by the call's own timeout_ms and by its gRPC deadline (at least 1 ms). */
function withinCall(timeoutMs: number, req: CallRequest, ctx: CallContext): number {
  let within = timeoutMs;
  if (req.timeoutMs > 0) within = Math.min(within, req.timeoutMs);
  if (Number.isFinite(ctx.deadline)) within = Math.min(within, Math.max(1, ctx.deadline - Date.now()));
  return within;
}

/** The prepare step after the session check: the tool's arguments and its timeouts. */
function prepare(rt: HostRuntime, tool: Tool, req: CallRequest, ctx: CallContext): ToolInvocation {
  const args = bindArguments(tool, req.args, req.kwargs);
  const { config } = rt;
  const timeoutMs = timeoutOf(rt, tool, req, ctx);
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

/** ToolNotFound for `name`, listing the tools this node has for the session. */
function toolNotFound(rt: HostRuntime, sessionId: string, name: string): BridgeError {
  const names = rt.tools.names(sessionId);
  const shown = names.slice(0, 20).join(", ") + (names.length > 20 ? ", ..." : "");
  return new BridgeError(
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
  return encodeChunks(tool, chunks);
}
