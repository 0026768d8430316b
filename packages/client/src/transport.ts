/**
 * The client's channel to a host: credentials, channel options, and the one way a unary RPC
 * is made (deadline, cancellation, transport failures as CommunicationError). The facade
 * (client.ts) and the feature modules (variables, streams) call the host through it.
 */
import * as grpc from "@grpc/grpc-js";
import { BridgeError, ErrorType, errorFromInfo, pb } from "@toolbridge/core";
import type { CallOptions, ClientOptions } from "./options.js";
import { traceContextInterceptor } from "./tracing.js";

// The host enforces timeout_ms itself; the deadline is a backstop for a host that never answers.
export const DEADLINE_SLACK_MS = 1000;
const DEFAULT_TIMEOUT_MS = 30_000;

type Callback<T> = (error: grpc.ServiceError | null, response: T) => void;

/** Starts one unary RPC on the stub with the given callback and call options. */
export type UnaryInvoke<Req, Res> = (
  request: Req,
  callback: Callback<Res>,
  options: grpc.CallOptions,
) => grpc.ClientUnaryCall;

/** A unary call's options: without `timeoutMs` or `deadline` it gets the client's default timeout. */
export type UnaryOptions = Pick<CallOptions, "timeoutMs" | "signal" | "deadline"> & {
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

/** The gRPC stub of one host and the client's default timeout. */
export class ClientTransport {
  readonly stub: pb.ToolBridgeClient;
  /** The timeout of every tool call that sets none (a stream: its idle timeout). */
  readonly defaultTimeoutMs: number;

  constructor(target: string, options: ClientOptions) {
    const maxBytes = options.maxMessageBytes ?? 10 * 1024 * 1024;
    const { tls, token } = options;
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    const interceptors = [
      token === undefined ? undefined : bearerToken(token),
      traceContextInterceptor(),
    ].filter((interceptor) => interceptor !== undefined);
    if (!(this.defaultTimeoutMs > 0)) {
      throw new BridgeError(
        ErrorType.ValidationError,
        `defaultTimeoutMs must be a positive number of milliseconds, got ${this.defaultTimeoutMs}`,
        { details: { field: "defaultTimeoutMs" } },
      );
    }
    this.stub = new pb.ToolBridgeClient(target, options.credentials ?? channelCredentials(tls), {
      "grpc.max_receive_message_length": maxBytes,
      "grpc.max_send_message_length": maxBytes,
      "grpc.keepalive_time_ms": options.keepaliveTimeMs ?? 30_000,
      "grpc.keepalive_timeout_ms": options.keepaliveTimeoutMs ?? 10_000,
      ...(tls?.serverName === undefined ? {} : { "grpc.ssl_target_name_override": tls.serverName }),
      ...options.channelOptions,
      ...(interceptors.length === 0 ? {} : { interceptors }),
    });
  }

  close(): void {
    this.stub.close();
  }

  /**
   * Calls a unary RPC; a transport failure rejects with CommunicationError naming `what`.
   * Without `timeoutMs` or `deadline` the call's deadline is `defaultTimeoutMs` (unless
   * `defaultDeadline` is false), so that a host that stops answering does not hang it.
   */
  unary<Req, Res>(
    what: string,
    invoke: UnaryInvoke<Req, Res>,
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

/** The gRPC deadline of a call: the earlier of `deadline` and `timeoutMs` plus slack. */
export function callOptions(options: Pick<CallOptions, "timeoutMs" | "deadline">): grpc.CallOptions {
  let deadline = options.deadline instanceof Date ? options.deadline.getTime() : options.deadline;
  if (options.timeoutMs !== undefined && options.timeoutMs > 0) {
    deadline = Math.min(
      deadline ?? Number.POSITIVE_INFINITY,
      Date.now() + options.timeoutMs + DEADLINE_SLACK_MS,
    );
  }
  return deadline === undefined ? {} : { deadline };
}

/** Throws the BridgeError of a response that says it failed. */
export function throwIfFailed(success: boolean, error: pb.ErrorInfo | undefined): void {
  if (!success) throw errorFromInfo(error, "the host reported a failure without saying which");
}

/** A failed call as CommunicationError; `details` replaces gRPC's when given. */
export function communicationError(what: string, error: unknown, details?: string): BridgeError {
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
