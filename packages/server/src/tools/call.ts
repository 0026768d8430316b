/**
 * One call between its steps (engine.ts names them): `ToolCall` holds what a call has
 * taken (its invocation or remote call, its permit) so that `finish` gives every bit of it
 * back, however the call ended. The budget rules live here too: one for a tool of this node
 * and for a tool another node serves.
 */
import { BridgeError, ErrorType, pb, type pbValues } from "@toolbridge/core";
import type { HostConfig } from "../config.js";
import { GRPC_PROTOCOL, UNRESOLVED_TOOL } from "../metrics/metrics.js";
import type { ToolSpan } from "../tracing/contract.js";
import { bindArguments } from "./args.js";
import type { CallContext, CallOutcome, CallRequest, ChunkSink } from "./context.js";
import type { Tool } from "./define.js";
import type { EngineHost } from "./engine-host.js";
import { errorInfo } from "./errors.js";
import { ToolInvocation } from "./executor.js";
import { admit, type Permit } from "./limits.js";
import { checkOutput, encodeChunks, encodeOutput } from "./output.js";
import type { RemoteCall } from "./remote.js";

/** What the run step drives: the tool here, or a call of it on the node that serves it. */
export type Running = ToolInvocation | RemoteCall;

/** The state of one call between its steps, and the one place where a call ends. */
export class ToolCall {
  private readonly startedAt = performance.now();
  private running: Running | undefined;
  private permit: Permit | undefined;
  /** The call's execute_tool span, when the host traces; from prepare to finish. */
  private readonly span: ToolSpan | undefined;
  /** Chunks the sink accepted. */
  chunks = 0;

  constructor(
    private readonly host: EngineHost,
    private readonly req: CallRequest,
    private readonly ctx: CallContext,
    private readonly streamed: boolean,
  ) {
    const tracing = host.tracing?.current;
    this.span =
      tracing === undefined
        ? undefined
        : tracing.toolSpan({
            toolId: req.toolId,
            sessionId: req.sessionId,
            requestId: ctx.requestId,
            principal: ctx.principal.name,
            protocol: ctx.protocol ?? GRPC_PROTOCOL,
            streamed,
            args: req.args,
            kwargs: req.kwargs,
          });
  }

  /** Whether the tool was started (admitted here, or sent to the node serving it). */
  get ran(): boolean {
    return (
      this.permit !== undefined || (this.running !== undefined && !(this.running instanceof ToolInvocation))
    );
  }

  /**
   * The rest of prepare once the session is checked, then admit: the invocation, attached
   * to the cancellation and holding a permit. Synchronous for a tool of this node without a
   * shared rate limit, so a call whose session was checked already (a batch item) reaches
   * its tool without waiting a turn; a shared rate limit or a tool of another node is async.
   */
  start(): Running | Promise<Running> {
    const { host, req, ctx } = this;
    // The client may have gone while the session was looked up; do not start the tool then.
    if (ctx.cancellation.reason !== undefined) throw ctx.cancellation.reason;
    const tool = host.tools.resolve(req.sessionId, req.toolId);
    if (tool === undefined) return this.startElsewhere();
    const invocation = prepare(host, tool, req, ctx, this.span);
    this.running = invocation;
    ctx.cancellation.attach(invocation);
    const shared = host.sharedRate !== undefined && host.tools.isGlobal(tool) ? host.sharedRate : undefined;
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
    const { host, req, ctx } = this;
    const others = ctx.forwarded === true ? undefined : host.remote;
    const remote = others === undefined ? undefined : await others.find(req.sessionId, req.toolId);
    if (remote === undefined || others === undefined) throw toolNotFound(host, req.sessionId, req.toolId);
    if (ctx.cancellation.reason !== undefined) throw ctx.cancellation.reason;
    const streaming = remote.spec.type === pb.ToolType.TOOL_TYPE_STREAMING;
    const declared = remote.spec.limits?.timeoutMs || undefined;
    const timeoutMs = withinCall(defaultBudgetMs(host.config, declared, streaming), req, ctx);
    const forwarded = others.call(remote, req, ctx.requestId, timeoutMs, this.span?.carrier());
    this.running = forwarded;
    ctx.cancellation.attach(forwarded);
    return forwarded;
  }

  /** The run step of a stream: pulls chunks only as fast as the sink takes them. */
  async pump(running: Running, sink: ChunkSink): Promise<void> {
    if (!(running instanceof ToolInvocation)) return this.pumpForwarded(running, sink);
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
        this.host.metrics.recordStreamChunk(tool.name);
        if (accepted !== undefined) await invocation.waitFor(accepted);
      }
    } finally {
      iterator.close();
    }
  }

  /** A stream of another node: its chunks arrive encoded and checked already. */
  private async pumpForwarded(forwarded: RemoteCall, sink: ChunkSink): Promise<void> {
    const { cancellation } = this.ctx;
    for await (const chunk of forwarded.stream()) {
      if (cancellation.reason !== undefined) throw cancellation.reason;
      const accepted = sink(chunk, this.chunks);
      this.chunks++;
      this.host.metrics.recordStreamChunk(forwarded.tool.name);
      if (accepted !== undefined) await Promise.race([accepted, cancellation.whenCancelled()]);
    }
  }

  /** The outcome of a call answered from its record: nothing ran, only the host's time is new. */
  replayed(outcome: CallOutcome): CallOutcome {
    const { req, ctx } = this;
    ctx.log.debug({ sessionId: req.sessionId, tool: req.toolId, success: outcome.success }, "call replayed");
    this.host.metrics.recordReplay(outcome.success ? undefined : outcome.error.type);
    const metrics = { durationMs: outcome.metrics.durationMs, hostMs: performance.now() - this.startedAt };
    this.span?.end({
      replayed: true,
      ...(outcome.success
        ? { result: outcome.result }
        : { errorType: outcome.error.type, errorMessage: outcome.error.message }),
    });
    return { ...outcome, metrics };
  }

  /**
   * The one finish step: counts the call, logs it, ends its span and releases what it held;
   * returns its metrics. `result`, a plain call's, is for the span when it records content.
   */
  finish(error: pb.ErrorInfo | undefined, result?: pbValues.Value): pb.ExecutionMetrics {
    const { host, req, ctx, running } = this;
    // A call refused before it ran (validation, a limit) has no duration to observe.
    const durationMs = running !== undefined && this.ran ? running.elapsedMs() : undefined;
    const tool = running?.tool.name ?? host.tools.resolve(req.sessionId, req.toolId)?.name ?? UNRESOLVED_TOOL;
    const permit = this.permit;
    if (running instanceof ToolInvocation && running.running) {
      // The call ended (a timeout, a cancellation) but the tool ignored its signal and still
      // runs: it keeps its concurrency slot, and counts as overdue, until it really settles.
      host.metrics.recordOverdue(tool, 1);
      running.whenSettled(() => {
        permit?.release();
        host.metrics.recordOverdue(tool, -1);
      });
    } else {
      permit?.release();
    }
    if (running !== undefined) ctx.cancellation.detach(running);
    if (running instanceof ToolInvocation) running.end(error?.type);
    const hostMs = performance.now() - this.startedAt;
    this.span?.end({
      tool: running?.tool.name,
      errorType: error?.type,
      errorMessage: error?.message,
      replayed: false,
      remoteNode: running === undefined || running instanceof ToolInvocation ? undefined : running.tool.node,
      chunks: this.streamed ? this.chunks : undefined,
      result,
    });
    host.metrics.recordCall({
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
    const info = errorInfo(this.host, error);
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
export function timeoutOf(
  host: EngineHost,
  tool: Tool | undefined,
  req: CallRequest,
  ctx: CallContext,
): number {
  return withinCall(defaultBudgetMs(host.config, tool?.timeoutMs, tool?.streaming ?? false), req, ctx);
}

/** `timeoutMs` shortened by the call's own timeout_ms and by its gRPC deadline (at least 1 ms). */
function withinCall(timeoutMs: number, req: CallRequest, ctx: CallContext): number {
  let within = timeoutMs;
  if (req.timeoutMs > 0) within = Math.min(within, req.timeoutMs);
  if (Number.isFinite(ctx.deadline)) within = Math.min(within, Math.max(1, ctx.deadline - Date.now()));
  return within;
}

/** The prepare step after the session check: the tool's arguments and its timeouts; its code runs in `span`. */
function prepare(
  host: EngineHost,
  tool: Tool,
  req: CallRequest,
  ctx: CallContext,
  span: ToolSpan | undefined,
): ToolInvocation {
  const args = bindArguments(tool, req.args, req.kwargs);
  const { config } = host;
  const timeoutMs = timeoutOf(host, tool, req, ctx);
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
    span,
  });
}

/** ToolNotFound for `name`, listing the tools this node has for the session. */
function toolNotFound(host: EngineHost, sessionId: string, name: string): BridgeError {
  const names = host.tools.names(sessionId);
  const shown = names.slice(0, 20).join(", ") + (names.length > 20 ? ", ..." : "");
  return new BridgeError(
    ErrorType.ToolNotFound,
    `no tool named '${name.slice(0, 200)}' in session '${sessionId}'; available: ${shown || "none"}`,
    { details: { tool: name.slice(0, 200) } },
  );
}

/** The run step of a plain call: the encoded result; a streaming tool's chunks are collected into a list. */
export async function resultOf(invocation: ToolInvocation): Promise<pbValues.Value> {
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
