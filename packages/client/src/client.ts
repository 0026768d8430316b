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
  errorFromInfo,
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
import { type MetricsSnapshot, toMetricsSnapshot } from "./metrics.js";
import { type RetryOptions, withRetry } from "./retry.js";
import { RemoteVariableWatcher, writeMetadata } from "./variables.js";

export interface ClientOptions {
  /** Largest message sent or received; the host's default is 10 MiB. */
  maxMessageBytes?: number;
  keepaliveTimeMs?: number;
  keepaliveTimeoutMs?: number;
  /**
   * TLS to a host serving it (`--tls-cert`): `ca` is the PEM CA bundle that signed the
   * host's certificate (default: the system's roots); `cert` and `key` this client's
   * certificate and key for a host that requires client certificates (`--tls-client-ca`);
   * `serverName` overrides the name checked against the host's certificate.
   */
  tls?: { ca?: Buffer | string; cert?: Buffer | string; key?: Buffer | string; serverName?: string };
  /** A bearer token for a host that authenticates callers: every call sends `authorization: Bearer <token>`. */
  token?: string;
  /** Raw channel credentials (instead of `tls`); plaintext by default, as the host serves. */
  credentials?: grpc.ChannelCredentials;
  /** How decoded maps are returned (plain objects by default). */
  decode?: DecodeOptions;
  /** Extra grpc-js channel options. */
  channelOptions?: grpc.ChannelOptions;
  /**
   * The timeout of every tool call that sets none (a stream: its idle timeout), and the
   * deadline of every other unary RPC (sessions, ListTools, variables, GetMetrics), so that
   * a host that stops answering fails the call with CommunicationError (DEADLINE_EXCEEDED)
   * instead of hanging it; 30 s by default. A batch without `timeoutMs` has no deadline
   * (its items may legitimately run long); watches and streams keep their own idle timeouts.
   */
  defaultTimeoutMs?: number;
}

export interface CallOptions {
  /** Positional arguments, bound to the tool's parameters in order. */
  args?: readonly unknown[];
  /** Per-call timeout: the host stops the tool and the gRPC deadline is set a little later. */
  timeoutMs?: number;
  /** Cancels the call; the host aborts the tool. */
  signal?: AbortSignal;
  /**
   * The call's idempotency key, not a correlation id: a call repeated under the same id in
   * the same session within the host's replay window (same tool and arguments) gets the
   * first call's outcome, and the tool does not run again; another call under an id in use
   * fails with RequestIdReused and does not run (docs/replay.md). Without one the host
   * names the call and records nothing.
   */
  requestId?: string;
  /** Absolute gRPC deadline; the host stops the tool when it passes (timeoutMs need not be set). */
  deadline?: Date | number;
}

/** Options of a streamed call; `timeoutMs` is the whole stream's total budget. */
export interface StreamOptions extends CallOptions {
  /**
   * The longest the tool may take to produce its next chunk (the first included); the
   * shorter of this and the tool's own idle timeout applies. The stream ends with a
   * Timeout whose `details.timeout` is "idle" when it passes ("total" for `timeoutMs`).
   */
  idleTimeoutMs?: number;
}

export interface Session {
  readonly sessionId: string;
  readonly toolCount: number;
  readonly capabilities: readonly string[];
  /** False when the session existed and this client attached to it. */
  readonly created: boolean;
}

export interface ParameterSpec {
  readonly name: string;
  readonly type: string;
  readonly description: string;
  readonly required: boolean;
  readonly default?: NativeValue;
}

/** What the host says about one tool (ListTools). */
export interface ToolSpec {
  readonly name: string;
  readonly description: string;
  readonly streaming: boolean;
  readonly parametersSchema: Record<string, unknown>;
  /** JSON Schema of the result (a streaming tool: of each chunk), when the tool declares one. */
  readonly outputSchema: Record<string, unknown> | undefined;
  readonly parameters: readonly ParameterSpec[];
  /** The longest a call may run (a streaming tool: its total budget); 0: the host's default applies. */
  readonly timeoutMs: number;
  /** Streaming tools: the longest wait for the next chunk; 0: the host's default applies. */
  readonly idleTimeoutMs: number;
  /** Calls that may run at once, over all sessions; 0: unlimited. */
  readonly maxConcurrentCalls: number;
  /** Calls that may start per minute, over all sessions; 0: unlimited. */
  readonly rateLimitPerMinute: number;
  /** A pure tool: the same arguments always give the same result, so results may be cached. */
  readonly cacheable: boolean;
  /** Safe to call again after a failure whose outcome is unknown (retries rely on it). */
  readonly idempotent: boolean;
  readonly scope: "global" | "session";
  readonly metadata: Readonly<Record<string, string>>;
}

export interface SessionDetails {
  readonly sessionId: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly createdAt: Date;
  readonly lastAccessedAt: Date;
  readonly expiresAt: Date;
  readonly toolCount: number;
  readonly variableCount: number;
  /** The principal that owns the session ("@anonymous" on a host without authentication). */
  readonly owner: string;
}

// The host enforces timeout_ms itself; the deadline is a backstop for a host that never answers.
const DEADLINE_SLACK_MS = 1000;
const DEFAULT_TIMEOUT_MS = 30_000;

type Callback<T> = (error: grpc.ServiceError | null, response: T) => void;

/** A unary call's options: without `timeoutMs` or `deadline` it gets the client's default timeout. */
type UnaryOptions = Pick<CallOptions, "timeoutMs" | "signal" | "deadline"> & {
  /** False: no default deadline (a call that may legitimately run long, e.g. a batch). */
  defaultDeadline?: boolean;
};

const pem = (value: Buffer | string | undefined): Buffer | null =>
  value === undefined ? null : Buffer.isBuffer(value) ? value : Buffer.from(value);

function channelCredentials(tls: ClientOptions["tls"]): grpc.ChannelCredentials {
  if (tls === undefined) return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(pem(tls.ca), pem(tls.key), pem(tls.cert));
}

/**
 * Adds the bearer token to every call's metadata. An interceptor rather than call
 * credentials: grpc-js refuses those on a plaintext channel (e.g. to a loopback host).
 */
function bearerToken(token: string): grpc.Interceptor {
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set("authorization", `Bearer ${token}`);
        next(metadata, listener);
      },
    });
}

/** Client of a toolbridge host, for Node workers and for the host's own tests. */
export class ToolBridgeClient {
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
    const maxBytes = options.maxMessageBytes ?? 10 * 1024 * 1024;
    const { tls, token } = options;
    this.stub = new pb.ToolBridgeClient(target, options.credentials ?? channelCredentials(tls), {
      "grpc.max_receive_message_length": maxBytes,
      "grpc.max_send_message_length": maxBytes,
      "grpc.keepalive_time_ms": options.keepaliveTimeMs ?? 30_000,
      "grpc.keepalive_timeout_ms": options.keepaliveTimeoutMs ?? 10_000,
      ...(tls?.serverName === undefined ? {} : { "grpc.ssl_target_name_override": tls.serverName }),
      ...options.channelOptions,
      ...(token === undefined ? {} : { interceptors: [bearerToken(token)] }),
    });
    this.decodeOptions = options.decode ?? {};
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!(this.defaultTimeoutMs > 0)) {
      throw new RangeError(
        `defaultTimeoutMs must be a positive number of milliseconds, got ${this.defaultTimeoutMs}`,
      );
    }
  }

  /** The session this client works in, once initializeSession succeeded. */
  get sessionId(): string | undefined {
    return this.currentSession;
  }

  /** Creates a session (or attaches to an existing one with that id); the host picks an id when omitted. */
  async initializeSession(sessionId = "", metadata: Record<string, string> = {}): Promise<Session> {
    const response = await this.unary<pb.InitializeSessionRequest, pb.InitializeSessionResponse>(
      "InitializeSession",
      (req, cb, opts) => this.stub.initializeSession(req, new grpc.Metadata(), opts, cb),
      { sessionId, metadata },
    );
    throwIfFailed(response.success, response.error);
    this.currentSession = response.sessionId;
    this.sessionMetadata = { ...metadata };
    return {
      sessionId: response.sessionId,
      toolCount: response.toolCount,
      capabilities: response.capabilities,
      created: response.created,
    };
  }

  async listTools(): Promise<ToolSpec[]> {
    const sessionId = this.requireSession();
    const response = await this.unary<pb.ListToolsRequest, pb.ListToolsResponse>(
      "ListTools",
      (req, cb, opts) => this.stub.listTools(req, new grpc.Metadata(), opts, cb),
      { sessionId },
    );
    throwIfFailed(response.success, response.error);
    const tools = response.tools.map(toToolSpec);
    return tools;
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
    const response = await this.unary<pb.ToolCallRequest, pb.ToolCallResponse>(
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
    const response = await this.unary<pb.BatchToolCallRequest, pb.BatchToolCallResponse>(
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
  async getMetrics(options: Pick<CallOptions, "timeoutMs"> = {}): Promise<MetricsSnapshot> {
    const response = await this.unary<pb.GetMetricsRequest, pb.GetMetricsResponse>(
      "GetMetrics",
      (req, cb, callOptions) => this.stub.getMetrics(req, new grpc.Metadata(), callOptions, cb),
      {},
      options,
    );
    return toMetricsSnapshot(response);
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
    const sessionId = this.requireSession();
    const idleTimeoutMs = options.idleTimeoutMs ?? this.defaultTimeoutMs;
    const call = this.stub.streamTool(
      {
        sessionId,
        toolId,
        args: encodeArgs(options.args ?? []),
        kwargs: encodeKwargs(kwargs),
        streamId: `stream_${randomUUID()}`,
        requestId: options.requestId ?? "",
        timeoutMs: options.timeoutMs ?? 0,
        idleTimeoutMs,
      },
      new grpc.Metadata(),
      callOptions(options),
    );
    const onAbort = () => call.cancel();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    let finished = false;
    let idle = false;
    const chunks = (call as AsyncIterable<pb.ToolStreamChunk>)[Symbol.asyncIterator]();
    try {
      for (;;) {
        // Only the wait for the next chunk counts, not the time the consumer spends on one.
        const watchdog = setTimeout(() => {
          idle = true;
          call.cancel();
        }, idleTimeoutMs + DEADLINE_SLACK_MS);
        const step = await chunks.next().finally(() => clearTimeout(watchdog));
        if (step.done === true) break;
        const content = step.value.content;
        if (content?.$case === "data") {
          yield decodeValue(content.value, this.decodeOptions);
        } else if (content?.$case === "error") {
          finished = true;
          throw errorFromInfo(content.value);
        } else if (content?.$case === "complete") {
          finished = true;
          return;
        }
      }
      finished = true;
      throw new BridgeError(
        ErrorType.CommunicationError,
        `stream of '${toolId}' ended without a complete chunk`,
      );
    } catch (error) {
      if (idle) {
        throw communicationError(toolId, {
          code: grpc.status.DEADLINE_EXCEEDED,
          details: `no chunk within ${idleTimeoutMs + DEADLINE_SLACK_MS} ms (the idle timeout plus slack); the stream was cancelled`,
        });
      }
      throw error instanceof BridgeError ? error : communicationError(toolId, error);
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
      if (!finished) call.cancel();
    }
  }

  async sessionInfo(): Promise<SessionDetails> {
    const sessionId = this.requireSession();
    const response = await this.unary<pb.GetSessionInfoRequest, pb.SessionInfoResponse>(
      "GetSessionInfo",
      (req, cb, opts) => this.stub.getSessionInfo(req, new grpc.Metadata(), opts, cb),
      { sessionId },
    );
    throwIfFailed(response.success, response.error);
    const s = response.session as pb.SessionInfo;
    return {
      sessionId: s.sessionId,
      metadata: s.metadata,
      createdAt: fromPbTimestamp(s.createdAt),
      lastAccessedAt: fromPbTimestamp(s.lastAccessedAt),
      expiresAt: fromPbTimestamp(s.expiresAt),
      toolCount: s.toolCount,
      variableCount: s.variableCount,
      owner: s.owner,
    };
  }

  /** Keeps the session alive; resolves with its new expiry. */
  async heartbeat(): Promise<Date> {
    const sessionId = this.requireSession();
    const response = await this.unary<pb.HeartbeatRequest, pb.HeartbeatResponse>(
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
    const response = await this.unary<pb.CleanupSessionRequest, pb.StatusResponse>(
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
    const response = await this.unary<pb.GetVariableRequest, pb.VariableResponse>(
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
    const response = await this.unary<pb.DeleteVariableRequest, pb.StatusResponse>(
      "DeleteSessionVariable",
      (req, cb, opts) => this.stub.deleteSessionVariable(req, new grpc.Metadata(), opts, cb),
      { sessionId, variableName: name, expectedVersion: expectedVersionToPb(options.expectedVersion) },
    );
    throwIfFailed(response.success, response.error);
  }

  /** The session's variables sorted by name (only those starting with `prefix` when given). */
  async listVariables(options: { prefix?: string } = {}): Promise<Variable[]> {
    const sessionId = this.requireSession();
    const response = await this.unary<pb.ListVariablesRequest, pb.ListVariablesResponse>(
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
    const response = await this.unary<pb.SetVariableRequest, pb.SetVariableResponse>(
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
      const response = await this.unary<pb.HealthCheckRequest, pb.HealthCheckResponse>(
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
    this.stub.close();
  }

  private requireSession(): string {
    if (this.currentSession === undefined) {
      throw new BridgeError(ErrorType.SessionNotFound, "no session: call initializeSession() first");
    }
    return this.currentSession;
  }

  /**
   * Calls a unary RPC; a transport failure rejects with CommunicationError naming `what`.
   * Without `timeoutMs` or `deadline` the call's deadline is `defaultTimeoutMs` (unless
   * `defaultDeadline` is false), so that a host that stops answering does not hang it.
   */
  private unary<Req, Res>(
    what: string,
    invoke: (request: Req, callback: Callback<Res>, options: grpc.CallOptions) => grpc.ClientUnaryCall,
    request: Req,
    options: UnaryOptions = {},
  ): Promise<Res> {
    const byDefault =
      options.timeoutMs === undefined && options.deadline === undefined && options.defaultDeadline !== false;
    return new Promise<Res>((resolve, reject) => {
      const call = invoke(
        request,
        (error, response) => {
          options.signal?.removeEventListener("abort", onAbort);
          if (error === null) resolve(response);
          else if (byDefault && error.code === grpc.status.DEADLINE_EXCEEDED) {
            // gRPC's own wording ("Deadline exceeded") says nothing of where the deadline came from.
            const details = `no answer from the host within ${this.defaultTimeoutMs} ms (the client's defaultTimeoutMs); the call was cancelled`;
            reject(communicationError(what, error, details));
          } else reject(communicationError(what, error));
        },
        byDefault ? { deadline: Date.now() + this.defaultTimeoutMs } : callOptions(options),
      );
      const onAbort = () => call.cancel();
      options.signal?.addEventListener("abort", onAbort, { once: true });
    });
  }
}

function callOptions(options: Pick<CallOptions, "timeoutMs" | "deadline">): grpc.CallOptions {
  let deadline = options.deadline instanceof Date ? options.deadline.getTime() : options.deadline;
  if (options.timeoutMs !== undefined && options.timeoutMs > 0) {
    deadline = Math.min(
      deadline ?? Number.POSITIVE_INFINITY,
      Date.now() + options.timeoutMs + DEADLINE_SLACK_MS,
    );
  }
  return deadline === undefined ? {} : { deadline };
}

function throwIfFailed(success: boolean, error: pb.ErrorInfo | undefined): void {
  if (!success) throw errorFromInfo(error, "the host reported a failure without saying which");
}

/** A failed call as CommunicationError; `details` replaces gRPC's when given. */
function communicationError(what: string, error: unknown, details?: string): BridgeError {
  const e = error as Partial<grpc.ServiceError>;
  const code = typeof e.code === "number" ? e.code : grpc.status.UNKNOWN;
  const name = grpc.status[code] ?? String(code);
  return new BridgeError(
    ErrorType.CommunicationError,
    `communication error for '${what}': ${name} - ${details ?? e.details ?? e.message}`,
    {
      grpcCode: code,
      details: { grpc_code: name },
      cause: error,
    },
  );
}

function toToolSpec(spec: pb.ToolSpec): ToolSpec {
  return {
    name: spec.name,
    description: spec.description,
    streaming: spec.type === pb.ToolType.TOOL_TYPE_STREAMING,
    parametersSchema: JSON.parse(spec.parametersSchema || "{}") as Record<string, unknown>,
    outputSchema:
      spec.outputSchema === "" ? undefined : (JSON.parse(spec.outputSchema) as Record<string, unknown>),
    parameters: spec.parameters.map((p) => ({
      name: p.name,
      type: p.type,
      description: p.description,
      required: p.required,
      ...(p.defaultValue === undefined ? {} : { default: decodeValue(p.defaultValue) }),
    })),
    timeoutMs: spec.limits?.timeoutMs ?? 0,
    idleTimeoutMs: spec.limits?.idleTimeoutMs ?? 0,
    maxConcurrentCalls: spec.limits?.maxConcurrentCalls ?? 0,
    rateLimitPerMinute: spec.limits?.rateLimitPerMinute ?? 0,
    cacheable: spec.cacheable,
    idempotent: spec.idempotent,
    scope: spec.scope === pb.ToolScope.TOOL_SCOPE_SESSION ? "session" : "global",
    metadata: spec.metadata,
  };
}
