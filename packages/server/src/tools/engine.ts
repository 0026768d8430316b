/**
 * The call engine: the one way a tool gets called on this host. Every call (ExecuteTool,
 * StreamTool, each item of a batch or of a Calls stream, a worker's tool, a call another
 * node forwarded here) takes the same steps, so that all of them validate, limit, time out,
 * count and log alike:
 *
 *   prepare  the session checked for the caller's principal, the tool found (here, or on
 *            the node serving it), its arguments bound and validated, its timeouts;
 *   admit    the tool's concurrency and rate limits;
 *   run      the tool to its result, or its chunks into a sink, each checked against the
 *            output schema and encoded by it (output.ts);
 *   finish   metrics, the log line, the failure as ErrorInfo, the permit released.
 *
 * A way into the engine (an adapter: the gRPC services in rpc/, and any other protocol)
 * does three things only: it turns its request into a `CallRequest`, builds a
 * `CallContext` (a request id, a deadline, a `Cancellation` it cancels when its caller
 * goes, a logger, the caller's principal), and turns the outcome into its response:
 *
 *   const ctx = { requestId: newId("req"), deadline: Infinity, cancellation: new Cancellation(),
 *                 log: callLogger(log, { request_id: requestId }), principal };
 *   const outcome = await engine.call({ sessionId, toolId, args, kwargs, timeoutMs: 0 }, ctx);
 *   if (outcome.success) reply(outcome.result); else fail(outcome.error);
 *
 * The engine's entry points never throw: every failure is an outcome carrying an ErrorInfo
 * whose `type` is from docs/errors.md. It knows nothing of any wire (it depends on
 * `EngineHost` only); the gRPC status codes, message limits and flow control are the
 * adapters' business.
 */
import { pb } from "@toolbridge/core";
import type { Principal } from "../auth/principal.js";
import { type BatchContext, type BatchOutcome, runBatch } from "./batch.js";
import { resultOf, ToolCall, timeoutOf } from "./call.js";
import type { CallContext, CallOutcome, CallRequest, ChunkSink, StreamOutcome } from "./context.js";
import type { EngineHost } from "./engine-host.js";
import { errorInfo } from "./errors.js";
import { ToolInvocation } from "./executor.js";
import { isClaim, isRecordable, type ReplayClaim } from "./replay.js";

export type { BatchContext, BatchOutcome } from "./batch.js";
export {
  type CallContext,
  type CallOutcome,
  type CallRequest,
  Cancellation,
  type ChunkSink,
  callLogger,
  newId,
  type StreamOutcome,
} from "./context.js";
export type { EngineConfig, EngineHost, SessionCheck } from "./engine-host.js";
export { type ErrorPolicy, errorInfo } from "./errors.js";
export type { RemoteCall, RemoteTool, RemoteTools } from "./remote.js";

/** Runs tool calls for every adapter; see the module comment for the steps and the contract. */
export class CallEngine implements EngineHost {
  readonly config: EngineHost["config"];
  readonly sessions: EngineHost["sessions"];
  readonly tools: EngineHost["tools"];
  readonly metrics: EngineHost["metrics"];
  readonly log: EngineHost["log"];
  readonly replay: EngineHost["replay"];
  readonly sharedRate: EngineHost["sharedRate"];
  readonly remote: EngineHost["remote"];
  readonly tracing: EngineHost["tracing"];

  constructor(host: EngineHost) {
    this.config = host.config;
    this.sessions = host.sessions;
    this.tools = host.tools;
    this.metrics = host.metrics;
    this.log = host.log;
    this.replay = host.replay;
    this.sharedRate = host.sharedRate;
    this.remote = host.remote;
    this.tracing = host.tracing;
  }

  /**
   * Runs one call to its result (a streaming tool's chunks collected into one list value).
   * Never throws: a failure (SessionNotFound, ToolNotFound, ValidationError, a limit, Timeout,
   * Cancelled, the tool's own error, ...) is an outcome with `success: false`. With
   * `ctx.idempotencyKey` and replay on, a retry under the same key gets this call's outcome
   * without the tool running again (docs/replay.md). `ctx.cancellation` aborts the call.
   */
  async call(req: CallRequest, ctx: CallContext): Promise<CallOutcome> {
    const call = new ToolCall(this, req, ctx, false);
    let claim: ReplayClaim | undefined;
    let outcome: CallOutcome;
    try {
      if (ctx.sessionChecked !== true) await this.sessions.require(req.sessionId, ctx.principal);
      if (ctx.idempotencyKey !== undefined && this.replay !== undefined) {
        const budget = timeoutOf(this, this.tools.resolve(req.sessionId, req.toolId), req, ctx);
        const begun = await this.replay.begin(req, ctx.idempotencyKey, budget, ctx.cancellation);
        if (!isClaim(begun)) return call.replayed(begun);
        claim = begun;
      }
      const started = call.start();
      const running = started instanceof Promise ? await started : started;
      const result = running instanceof ToolInvocation ? await resultOf(running) : await running.run();
      outcome = { success: true, result, metrics: call.finish(undefined, result) };
    } catch (error) {
      outcome = call.fail(error);
    }
    if (claim !== undefined) await claim.settle(outcome, isRecordable(outcome, call.ran));
    return outcome;
  }

  /**
   * Runs one call as a stream: each chunk, checked and encoded, goes into `sink` in order,
   * and the tool is asked for the next one only once the sink's returned promise (if any)
   * settles. A plain tool's result is its one chunk. Never throws; `chunks` counts the chunks
   * the sink accepted, also on failure. Streams are not recorded for replay.
   */
  async stream(req: CallRequest, ctx: CallContext, sink: ChunkSink): Promise<StreamOutcome> {
    const call = new ToolCall(this, req, ctx, true);
    try {
      if (ctx.sessionChecked !== true) await this.sessions.require(req.sessionId, ctx.principal);
      const started = call.start();
      await call.pump(started instanceof Promise ? await started : started, sink);
      return { success: true, chunks: call.chunks, metrics: call.finish(undefined) };
    } catch (error) {
      return { success: false, error: call.fail(error).error, chunks: call.chunks };
    }
  }

  /**
   * Runs a batch's items, each exactly as `call` would, in request order (parallel up to
   * `max_parallel` when asked), and resolves with their results tagged with their indexes.
   * Never throws; fails as a whole only when refused before any item runs (unknown session,
   * over maxBatchSize, two items with one index).
   */
  batch(req: pb.BatchToolCallRequest, ctx: BatchContext): Promise<BatchOutcome> {
    return runBatch(this, req, ctx);
  }

  /**
   * The specs of the tools session `sessionId` sees, for `principal`: this node's (global
   * and the session's own), then the session tools other nodes serve whose names this node
   * has none of. Rejects with SessionNotFound (not the principal's, or not live) or
   * Unavailable (the store).
   */
  async listTools(sessionId: string, principal: Principal): Promise<pb.ToolSpec[]> {
    await this.sessions.require(sessionId, principal);
    const specs = this.tools
      .list(sessionId)
      .map(({ tool, sessionScoped }) =>
        tool.spec(sessionScoped ? pb.ToolScope.TOOL_SCOPE_SESSION : pb.ToolScope.TOOL_SCOPE_GLOBAL),
      );
    if (this.remote !== undefined) {
      const own = new Set(specs.map((spec) => spec.name));
      for (const remote of await this.remote.list(sessionId)) {
        if (!own.has(remote.name)) specs.push(remote.spec);
      }
    }
    return specs;
  }

  /**
   * Resolves when `sessionId` is live and `principal`'s to use; rejects with SessionNotFound
   * otherwise (another principal's session does not exist for this one), Unavailable when
   * the store is unreachable. The check every call makes, for adapters that look first.
   */
  checkSession(sessionId: string, principal: Principal): Promise<unknown> {
    return this.sessions.require(sessionId, principal);
  }

  /** Any failure as the ErrorInfo adapters answer with (a non-BridgeError is logged as a host bug). */
  errorInfo(error: unknown): pb.ErrorInfo {
    return errorInfo(this, error);
  }
}
