/**
 * `ToolBridgeClient`, the TypeScript client of a toolbridge host: sessions, tool calls
 * (unary, streamed, batched, retried), session variables, health and metrics. The wire
 * lives in transport.ts, each feature's requests and answers in its own module.
 */
import { randomUUID } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import {
  BridgeError,
  type DeclareVariableOptions,
  type DecodeOptions,
  decodeValue,
  ErrorType,
  encodeArgs,
  encodeKwargs,
  encodeVariableValue,
  expectedVersionToPb,
  fromPbTimestamp,
  type NativeValue,
  pb,
  resumeAfterToPb,
  type SetVariableOptions,
  type Variable,
  type VariableInfo,
  type VariableType,
  type VariableWatcher,
  variableFromPb,
  variableInfoFromPb,
  type WatchVariablesOptions,
} from "@toolbridge/core";
import { type BatchItem, type BatchOptions, decodeResults, encodeItems } from "./batch.js";
import { type HostMetrics, hostMetricsFromPb } from "./metrics.js";
import type { CallOptions, ClientOptions, StreamOptions } from "./options.js";
import { type RetryOptions, withRetry } from "./retry.js";
import {
  type Session,
  type SessionDetails,
  sessionDetailsFromPb,
  sessionFromPb,
  type ToolSpec,
  toolSpecFromPb,
} from "./specs.js";
import { streamChunks } from "./stream.js";
import { ClientTransport, communicationError, throwIfFailed } from "./transport.js";
import { RemoteVariableWatcher, writeMetadata } from "./variables.js";

/** Client of a toolbridge host, for Node workers and for the host's own tests. */
export class ToolBridgeClient {
  private readonly transport: ClientTransport;
  private readonly stub: pb.ToolBridgeClient;
  private readonly decodeOptions: DecodeOptions;
  private currentSession: string | undefined;
  private sessionMetadata: Record<string, string> = {};
  /** The timeout of every tool call that sets none (a stream: its idle timeout). */
  readonly defaultTimeoutMs: number;

  /**
   * A client of the host at `target`: "host:port", or "unix:/path/to.sock" for a host
   * listening on a Unix domain socket.
   */
  constructor(target: string, options: ClientOptions = {}) {
    this.transport = new ClientTransport(target, options);
    this.stub = this.transport.stub;
    this.defaultTimeoutMs = this.transport.defaultTimeoutMs;
    this.decodeOptions = options.decode ?? {};
  }

  /** The session this client works in, once initializeSession succeeded. */
  get sessionId(): string | undefined {
    return this.currentSession;
  }

  /** Creates a session (or attaches to an existing one with that id); the host picks an id when omitted. */
  async initializeSession(sessionId = "", metadata: Record<string, string> = {}): Promise<Session> {
    const response = await this.transport.unary<pb.InitializeSessionRequest, pb.InitializeSessionResponse>(
      "InitializeSession",
      (req, cb, opts) => this.stub.initializeSession(req, new grpc.Metadata(), opts, cb),
      { sessionId, metadata },
    );
    throwIfFailed(response.success, response.error);
    this.currentSession = response.sessionId;
    this.sessionMetadata = { ...metadata };
    return sessionFromPb(response);
  }

  async listTools(): Promise<ToolSpec[]> {
    const sessionId = this.requireSession();
    const response = await this.transport.unary<pb.ListToolsRequest, pb.ListToolsResponse>(
      "ListTools",
      (req, cb, opts) => this.stub.listTools(req, new grpc.Metadata(), opts, cb),
      { sessionId },
    );
    throwIfFailed(response.success, response.error);
    return response.tools.map(toolSpecFromPb);
  }

  /**
   * Calls a tool and returns its decoded result; throws BridgeError with the host's error type.
   * A call without `timeoutMs` gets `defaultTimeoutMs`.
   */
  async executeTool(
    toolId: string,
    kwargs: Readonly<Record<string, unknown>> = {},
    options: CallOptions = {},
  ): Promise<NativeValue> {
    const sessionId = this.requireSession();
    const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs;
    const request: pb.ToolCallRequest = {
      sessionId,
      toolId,
      args: encodeArgs(options.args ?? []),
      kwargs: encodeKwargs(kwargs),
      requestId: options.requestId ?? "",
      timeoutMs,
    };
    const response = await this.transport.unary<pb.ToolCallRequest, pb.ToolCallResponse>(
      toolId,
      (req, cb, callOptions) => this.stub.executeTool(req, new grpc.Metadata(), callOptions, cb),
      request,
      { ...options, timeoutMs },
    );
    throwIfFailed(response.success, response.error);
    return decodeValue(response.result, this.decodeOptions);
  }

  /**
   * Runs several tool calls in one round trip. Resolves with one entry per item, in
   * request order: the result, or a BridgeError in place of an item that failed (with
   * stopOnError, items never started are Cancelled errors). Throws only when the host
   * refused the batch as a whole (unknown session, more items than maxBatchSize).
   */
  async executeBatch(
    items: readonly BatchItem[],
    options: BatchOptions = {},
  ): Promise<(NativeValue | BridgeError)[]> {
    const sessionId = this.requireSession();
    const request: pb.BatchToolCallRequest = {
      sessionId,
      batchId: options.batchId ?? `batch_${randomUUID()}`,
      items: encodeItems(items, options.timeoutMs),
      config: {
        parallel: options.parallel ?? true,
        stopOnError: options.stopOnError ?? false,
        maxParallel: options.maxParallel ?? 0,
      },
      requestId: options.requestId ?? "",
    };
    // No default deadline: without timeoutMs a batch runs as long as its items do.
    const response = await this.transport.unary<pb.BatchToolCallRequest, pb.BatchToolCallResponse>(
      "BatchExecuteTools",
      (req, cb, callOptions) => this.stub.batchExecuteTools(req, new grpc.Metadata(), callOptions, cb),
      request,
      { ...options, defaultDeadline: false },
    );
    throwIfFailed(response.success, response.error);
    return decodeResults(items, response, this.decodeOptions);
  }

  /**
   * executeTool under the retry policy (see retry.ts): transient failures are retried with
   * exponential backoff for every tool, rate-limit refusals after the host's retry-after;
   * tool errors never. Every attempt sends the same request id, so the host replays a call
   * that completed instead of running the tool again (docs/replay.md). After a host restart
   * the session is re-created, and the caller told when it came back empty.
   */
  async executeWithRetry(
    toolId: string,
    kwargs: Readonly<Record<string, unknown>> = {},
    options: CallOptions & RetryOptions = {},
  ): Promise<NativeValue> {
    const callOptions = { ...options, requestId: options.requestId ?? `req_${randomUUID()}` };
    const sessionId = this.requireSession();
    return withRetry(() => this.executeTool(toolId, kwargs, callOptions), options, {
      recoverSession: async () => (await this.initializeSession(sessionId, this.sessionMetadata)).created,
      sessionId,
      signal: options.signal,
    });
  }

  /** The host's counters (the same ones its Prometheus endpoint serves). */
  async getMetrics(options: Pick<CallOptions, "timeoutMs"> = {}): Promise<HostMetrics> {
    const response = await this.transport.unary<pb.GetMetricsRequest, pb.GetMetricsResponse>(
      "GetMetrics",
      (req, cb, callOptions) => this.stub.getMetrics(req, new grpc.Metadata(), callOptions, cb),
      {},
      options,
    );
    return hostMetricsFromPb(response);
  }

  /**
   * Streams a tool's chunks. Leaving the loop early (break, return, throw) cancels the
   * call, and the host aborts the tool. `timeoutMs` bounds the whole stream (its total
   * budget), `idleTimeoutMs` (by default `defaultTimeoutMs`) each wait for the next chunk;
   * a wait longer than that plus a second's slack (a host that stopped answering) cancels
   * the call and throws CommunicationError with DEADLINE_EXCEEDED.
   */
  async *streamTool(
    toolId: string,
    kwargs: Readonly<Record<string, unknown>> = {},
    options: StreamOptions = {},
  ): AsyncGenerator<NativeValue, void, undefined> {
    const request: pb.ToolStreamRequest = {
      sessionId: this.requireSession(),
      toolId,
      args: encodeArgs(options.args ?? []),
      kwargs: encodeKwargs(kwargs),
      streamId: `stream_${randomUUID()}`,
      requestId: options.requestId ?? "",
      timeoutMs: options.timeoutMs ?? 0,
      idleTimeoutMs: options.idleTimeoutMs ?? this.defaultTimeoutMs,
    };
    yield* streamChunks(this.transport, request, options, this.decodeOptions);
  }

  async sessionInfo(): Promise<SessionDetails> {
    const sessionId = this.requireSession();
    const response = await this.transport.unary<pb.GetSessionInfoRequest, pb.SessionInfoResponse>(
      "GetSessionInfo",
      (req, cb, opts) => this.stub.getSessionInfo(req, new grpc.Metadata(), opts, cb),
      { sessionId },
    );
    throwIfFailed(response.success, response.error);
    return sessionDetailsFromPb(response.session as pb.SessionInfo);
  }

  /** Keeps the session alive; resolves with its new expiry. */
  async heartbeat(): Promise<Date> {
    const sessionId = this.requireSession();
    const response = await this.transport.unary<pb.HeartbeatRequest, pb.HeartbeatResponse>(
      "Heartbeat",
      (req, cb, opts) => this.stub.heartbeat(req, new grpc.Metadata(), opts, cb),
      { sessionId },
    );
    throwIfFailed(response.success, response.error);
    return fromPbTimestamp(response.expiresAt);
  }

  /** Ends the session on the host; a session that is already gone is not an error. */
  async cleanup(): Promise<void> {
    const sessionId = this.currentSession;
    if (sessionId === undefined) return;
    const response = await this.transport.unary<pb.CleanupSessionRequest, pb.StatusResponse>(
      "CleanupSession",
      (req, cb, opts) => this.stub.cleanupSession(req, new grpc.Metadata(), opts, cb),
      { sessionId },
    );
    if (!response.success && response.error?.type !== ErrorType.SessionNotFound) {
      throwIfFailed(response.success, response.error);
    }
    this.currentSession = undefined;
  }

  // -- session variables (request building and the watch stream live in variables.ts) ----

  /** The variable with its value and metadata; throws VariableNotFound. */
  async getVariable(name: string): Promise<Variable> {
    const sessionId = this.requireSession();
    const response = await this.transport.unary<pb.GetVariableRequest, pb.VariableResponse>(
      "GetSessionVariable",
      (req, cb, opts) => this.stub.getSessionVariable(req, new grpc.Metadata(), opts, cb),
      { sessionId, variableName: name, includeMetadata: true },
    );
    throwIfFailed(response.exists, response.error);
    return variableFromPb(
      { name, value: response.value, version: response.version, metadata: response.metadata },
      this.decodeOptions,
    );
  }

  /**
   * Writes a variable (creating it unless `createIfMissing` is false); a declared one
   * must satisfy its constraints (ConstraintViolation otherwise, the old value stays).
   */
  async setVariable(name: string, value: unknown, options: SetVariableOptions = {}): Promise<VariableInfo> {
    return this.writeVariable({
      sessionId: this.requireSession(),
      variableName: name,
      value: encodeVariableValue(name, value),
      metadata: writeMetadata(options.tags),
      createIfMissing: options.createIfMissing ?? true,
      expectedVersion: expectedVersionToPb(options.expectedVersion),
    });
  }

  /** Creates a variable with a declared type and constraints (same declaration again: a plain write). */
  async declareVariable(
    name: string,
    type: VariableType,
    value: unknown,
    options: DeclareVariableOptions = {},
  ): Promise<VariableInfo> {
    return this.writeVariable({
      sessionId: this.requireSession(),
      variableName: name,
      value: encodeVariableValue(name, value),
      metadata: writeMetadata(options.tags, type, options.constraints ?? {}),
      createIfMissing: true,
      expectedVersion: expectedVersionToPb(options.expectedVersion),
    });
  }

  /** Deletes a variable; throws VariableNotFound, or VersionConflict when `expectedVersion` is stale. */
  async deleteVariable(name: string, options: { expectedVersion?: number } = {}): Promise<void> {
    const sessionId = this.requireSession();
    const response = await this.transport.unary<pb.DeleteVariableRequest, pb.StatusResponse>(
      "DeleteSessionVariable",
      (req, cb, opts) => this.stub.deleteSessionVariable(req, new grpc.Metadata(), opts, cb),
      { sessionId, variableName: name, expectedVersion: expectedVersionToPb(options.expectedVersion) },
    );
    throwIfFailed(response.success, response.error);
  }

  /** The session's variables sorted by name (only those starting with `prefix` when given). */
  async listVariables(options: { prefix?: string } = {}): Promise<Variable[]> {
    const sessionId = this.requireSession();
    const response = await this.transport.unary<pb.ListVariablesRequest, pb.ListVariablesResponse>(
      "ListSessionVariables",
      (req, cb, opts) => this.stub.listSessionVariables(req, new grpc.Metadata(), opts, cb),
      { sessionId, prefix: options.prefix ?? "" },
    );
    throwIfFailed(response.success, response.error);
    return response.variables.map((v) => variableFromPb(v, this.decodeOptions));
  }

  /**
   * Watches the named variables (all when `names` is empty). Await `ready()` before
   * relying on seeing a write made elsewhere; leaving the loop ends the watch.
   */
  watchVariables(names: readonly string[] = [], options: WatchVariablesOptions = {}): VariableWatcher {
    const sessionId = this.requireSession();
    const call = this.stub.watchSessionVariables({
      sessionId,
      variableNames: [...names],
      includeInitialValues: options.includeInitialValues ?? false,
      resumeAfterSequence: resumeAfterToPb(options.resumeAfterSequence),
    });
    return new RemoteVariableWatcher(
      call,
      this.decodeOptions,
      (error) => communicationError("WatchSessionVariables", error),
      options.signal,
    );
  }

  private async writeVariable(request: pb.SetVariableRequest): Promise<VariableInfo> {
    const response = await this.transport.unary<pb.SetVariableRequest, pb.SetVariableResponse>(
      "SetSessionVariable",
      (req, cb, opts) => this.stub.setSessionVariable(req, new grpc.Metadata(), opts, cb),
      request,
    );
    throwIfFailed(response.success, response.error);
    return variableInfoFromPb(request.variableName, response.version, response.metadata, this.decodeOptions);
  }

  /** True when the host answers SERVING within `timeoutMs`. */
  async healthCheck(timeoutMs = 5000): Promise<boolean> {
    try {
      const response = await this.transport.unary<pb.HealthCheckRequest, pb.HealthCheckResponse>(
        "HealthCheck",
        (req, cb, opts) => this.stub.healthCheck(req, new grpc.Metadata(), opts, cb),
        { service: "" },
        { timeoutMs },
      );
      return response.status === pb.HealthCheckResponse_ServingStatus.SERVING;
    } catch {
      return false;
    }
  }

  close(): void {
    this.transport.close();
  }

  private requireSession(): string {
    if (this.currentSession === undefined) {
      throw new BridgeError(ErrorType.SessionNotFound, "no session: call initializeSession() first");
    }
    return this.currentSession;
  }
}
