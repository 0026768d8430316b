import * as grpc from "@grpc/grpc-js";
import { asBuffer, BridgeError, ErrorType, pb } from "@toolbridge/core";
import { authenticationRefusal } from "../auth/guard.js";
import { StreamCredentials } from "../auth/open-streams.js";
import { ANONYMOUS, type Principal } from "../auth/principal.js";
import { RpcStatusError } from "../grpc/status.js";
import { describeHost, getToolStats, listRecentCalls, listSessions } from "../inspector/operations.js";
import { batchExecuteTools } from "./batch.js";
import { calls } from "./calls.js";
import { SHUTTING_DOWN } from "./draining.js";
import { executeTool } from "./execute.js";
import { healthCheck } from "./health.js";
import { guardRequests, type RequestCheck, refusalOf } from "./malformed.js";
import { getMetrics } from "./metrics.js";
import type { RpcHost } from "./rpc-host.js";
import { cleanupSession, getSessionInfo, heartbeat, initializeSession } from "./sessions.js";
import { streamTool } from "./stream.js";
import { listTools } from "./tools.js";
import {
  deleteSessionVariable,
  getSessionVariable,
  listSessionVariables,
  setSessionVariable,
  watchSessionVariables,
} from "./variables.js";

type MethodName = keyof typeof pb.ToolBridgeService;

interface MessageType<T> {
  encode(message: T): { finish(): Uint8Array };
  fromPartial(object: Record<string, unknown>): T;
}

const RESPONSE_TYPES: Partial<Record<MethodName, MessageType<unknown>>> = {
  initializeSession: pb.InitializeSessionResponse,
  cleanupSession: pb.StatusResponse,
  getSessionInfo: pb.SessionInfoResponse,
  heartbeat: pb.HeartbeatResponse,
  listTools: pb.ListToolsResponse,
  executeTool: pb.ToolCallResponse,
  batchExecuteTools: pb.BatchToolCallResponse,
  getSessionVariable: pb.VariableResponse,
  setSessionVariable: pb.SetVariableResponse,
  listSessionVariables: pb.ListVariablesResponse,
  deleteSessionVariable: pb.StatusResponse,
  healthCheck: pb.HealthCheckResponse,
  getMetrics: pb.GetMetricsResponse,
  listSessions: pb.ListSessionsResponse,
  listRecentCalls: pb.ListRecentCallsResponse,
  getToolStats: pb.GetToolStatsResponse,
  describeHost: pb.DescribeHostResponse,
  streamTool: pb.ToolStreamChunk,
  calls: pb.CallAnswer,
  watchSessionVariables: pb.VariableUpdate,
};

/**
 * A response serializer that never sends more than the message limit: an oversized
 * response is replaced by the same response type carrying a ResourceExhausted error,
 * so the client gets an in-band error it can act on instead of a bare transport
 * failure (a Calls answer keeps its call_id and carries the error in its response).
 * Stream handlers may pass pre-encoded Buffers (they check sizes themselves).
 */
function guardedSerializer<T>(type: MessageType<T>, limit: number) {
  return (message: T | Buffer): Buffer => {
    if (Buffer.isBuffer(message)) return message;
    const bytes = asBuffer(type.encode(message).finish());
    if (bytes.length <= limit) return bytes;
    const echo = message as {
      requestId?: string;
      batchId?: string;
      callId?: bigint;
      response?: { requestId?: string };
    };
    const error = {
      type: ErrorType.ResourceExhausted,
      message:
        `the response is ${bytes.length} bytes, over the host's ${limit}-byte message limit ` +
        "(maxMessageBytes); return less data, stream it in chunks, or raise the limit",
      details: { size: String(bytes.length), limit: String(limit) },
      stacktrace: "",
    };
    const replacement =
      echo.response !== undefined
        ? type.fromPartial({
            callId: echo.callId,
            response: { success: false, requestId: echo.response.requestId ?? "", error },
          })
        : type.fromPartial({
            success: false,
            requestId: echo.requestId ?? "",
            batchId: echo.batchId ?? "",
            error,
          });
    return asBuffer(type.encode(replacement).finish());
  };
}

/**
 * The ToolBridge service definition: responses guarded against the message limit, and
 * requests that cannot be decoded (or that `check` refuses, e.g. over maxValueNodes) handed
 * to the handlers as RefusedRequest.
 */
export function serviceDefinition(limit: number, check?: RequestCheck): grpc.ServiceDefinition {
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(pb.ToolBridgeService)) {
    const type = RESPONSE_TYPES[name as MethodName];
    definition[name] = {
      ...(method as grpc.MethodDefinition<unknown, unknown>),
      ...(type === undefined ? {} : { responseSerialize: guardedSerializer(type, limit) }),
    };
  }
  return guardRequests(definition as grpc.ServiceDefinition, check);
}

type Status = { code: grpc.status; details: string };

const REFUSED_WHILE_DRAINING = { code: grpc.status.UNAVAILABLE, details: SHUTTING_DOWN };

interface RpcOptions {
  /** Answered while the host drains (health checks). */
  whileDraining?: boolean;
  /** A health RPC: it needs authentication only with `healthRequiresAuth`. */
  health?: boolean;
}

/**
 * Runs `serve` with the caller's principal: at once (ANONYMOUS) when the host does not
 * authenticate or the RPC is exempt, else once the credentials are checked; a call they
 * do not authenticate is answered by `refuse` with UNAUTHENTICATED and goes no further.
 */
function withPrincipal(
  host: RpcHost,
  call: grpc.ServerUnaryCall<unknown, unknown>,
  options: RpcOptions,
  serve: (principal: Principal) => void,
  refuse: (status: grpc.StatusObject | Status) => void,
): void {
  if (!host.auth.enabled || (options.health === true && !host.config.healthRequiresAuth)) {
    serve(ANONYMOUS);
    return;
  }
  host.auth.authenticate(call).then(serve, (error: unknown) => refuse(refusalOfCall(host, call, error)));
}

/** The status refusing a call whose authentication failed; a refused caller is logged at debug level. */
function refusalOfCall(
  host: RpcHost,
  call: { getPath(): string },
  error: unknown,
): grpc.StatusObject | Status {
  if (error instanceof RpcStatusError) {
    host.log.debug({ method: call.getPath(), reason: error.message }, "refused an unauthenticated call");
  }
  return authenticationRefusal(error, host.log);
}

/**
 * A unary RPC: refused with UNAVAILABLE while the host drains (except `whileDraining`),
 * with UNAUTHENTICATED when authentication is on and the caller's credentials name no
 * principal, with INVALID_ARGUMENT when the request cannot be decoded, and counted in
 * flight until answered. The handler gets the caller's principal.
 */
function unary<Req, Res>(
  host: RpcHost,
  handler: (
    host: RpcHost,
    req: Req,
    call: grpc.ServerUnaryCall<Req, Res>,
    principal: Principal,
  ) => Promise<Res>,
  options: RpcOptions = {},
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    if (host.draining && options.whileDraining !== true) {
      callback(REFUSED_WHILE_DRAINING);
      return;
    }
    const serve = (principal: Principal) => {
      const refusal = refusalOf(call.request);
      if (refusal !== undefined) {
        callback(refusal);
        return;
      }
      void host.calls.track(
        handler(host, call.request, call, principal).then(
          (response) => callback(null, response),
          (error: unknown) => {
            if (error instanceof RpcStatusError) {
              callback({ code: error.code, details: error.message });
              return;
            }
            if (error instanceof BridgeError && error.type === ErrorType.Unavailable) {
              // E.g. the session store is unreachable: a retriable status, not a host bug.
              callback({ code: grpc.status.UNAVAILABLE, details: error.message });
              return;
            }
            host.log.error({ err: error }, "unhandled error in a unary handler");
            callback({ code: grpc.status.INTERNAL, details: `internal host error: ${String(error)}` });
          },
        ),
      );
    };
    withPrincipal(host, call, options, serve, callback);
  };
}

/** A server-streaming RPC, refused, authenticated and counted like a unary one. */
function serverStream<Req>(
  host: RpcHost,
  name: string,
  handler: (
    host: RpcHost,
    call: grpc.ServerWritableStream<Req, Buffer>,
    credentials: StreamCredentials,
  ) => Promise<void>,
): grpc.handleServerStreamingCall<Req, Buffer> {
  return (call) =>
    openStream(host, name, call, (credentials) => {
      const refusal = refusalOf(call.request);
      if (refusal === undefined) return handler(host, call, credentials);
      call.emit("error", refusal);
      return undefined;
    });
}

/**
 * A bidi-streaming RPC: refused while the host drains, authenticated when it opens (and
 * again whenever credentials are re-checked), and counted in flight until it is over. Its
 * messages arrive later, so refusing one that cannot be decoded is the handler's part
 * (`refusalOf` on each).
 */
function bidiStream<Req, Res>(
  host: RpcHost,
  name: string,
  handler: (
    host: RpcHost,
    call: grpc.ServerDuplexStream<Req, Res>,
    credentials: StreamCredentials,
  ) => Promise<void>,
): grpc.handleBidiStreamingCall<Req, Res> {
  return (call) =>
    openStream(host, name, call as grpc.ServerDuplexStream<unknown, unknown>, (credentials) =>
      handler(host, call, credentials),
    );
}

/**
 * What every streaming RPC does around its handler: refused with UNAVAILABLE while the
 * host drains, run with the caller's credentials (which the handler ends the stream on
 * when they are revoked: `onRevoked`), and counted in flight until `run`'s work settles
 * (`run` returns none when it refused the call itself); an error the work throws ends the
 * stream with INTERNAL. The credentials are released once the work is over.
 */
function openStream(
  host: RpcHost,
  name: string,
  call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>,
  run: (credentials: StreamCredentials) => Promise<void> | undefined,
): void {
  if (host.draining) {
    call.emit("error", REFUSED_WHILE_DRAINING);
    return;
  }
  const serve = (credentials: StreamCredentials) => {
    const work = run(credentials);
    if (work === undefined) {
      credentials.release();
      return;
    }
    void host.calls.track(
      work
        .catch((error: unknown) => {
          host.log.error({ err: error }, `unhandled error in ${name}`);
          if (!call.cancelled) call.emit("error", { code: grpc.status.INTERNAL, details: String(error) });
        })
        .finally(() => credentials.release()),
    );
  };
  if (!host.auth.enabled) {
    serve(new StreamCredentials(ANONYMOUS));
    return;
  }
  host.auth
    .authenticateStream(call)
    .then(serve, (error: unknown) => call.emit("error", refusalOfCall(host, call, error)));
}

/** The ToolBridge service: one handler per RPC of toolbridge.proto. */
export function serviceImplementation(host: RpcHost): grpc.UntypedServiceImplementation {
  return {
    initializeSession: unary(host, initializeSession),
    cleanupSession: unary(host, cleanupSession),
    getSessionInfo: unary(host, getSessionInfo),
    heartbeat: unary(host, heartbeat),
    listTools: unary(host, listTools),
    executeTool: unary(host, executeTool),
    batchExecuteTools: unary(host, batchExecuteTools),
    getMetrics: unary(host, getMetrics),
    healthCheck: unary(host, healthCheck, { whileDraining: true, health: true }),
    getSessionVariable: unary(host, getSessionVariable),
    setSessionVariable: unary(host, setSessionVariable),
    listSessionVariables: unary(host, listSessionVariables),
    deleteSessionVariable: unary(host, deleteSessionVariable),
    watchSessionVariables: serverStream(host, "WatchSessionVariables", watchSessionVariables),
    streamTool: serverStream(host, "StreamTool", streamTool),
    calls: bidiStream(host, "Calls", calls),
    listSessions: unary(host, listSessions),
    listRecentCalls: unary(host, listRecentCalls),
    getToolStats: unary(host, getToolStats),
    describeHost: unary(host, describeHost),
  };
}
