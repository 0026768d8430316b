/**
 * The inspector's way to the host: a grpc-js channel that carries already-encoded requests
 * to the host's real gRPC service and brings back encoded responses. Every RPC the browser
 * makes is therefore answered by the same code as any client's, with the same
 * authentication, limits and errors; nothing here knows what a method does.
 */

import { Code, ConnectError } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";

export interface HostChannelOptions {
  /** What a gRPC client dials: "host:port", "[::1]:port" or "unix:/path". */
  readonly target: string;
  /** Plaintext (grpc.credentials.createInsecure()) or TLS (createSsl with the CA). */
  readonly credentials: grpc.ChannelCredentials;
  /** The name to check the host's certificate against when it differs from the target's host. */
  readonly serverName?: string;
  /** Largest message the channel receives (the host's maxMessageBytes). */
  readonly maxMessageBytes: number;
}

const passThrough = (bytes: Buffer): Buffer => bytes;

/** A failure of the host call as the Connect error the browser gets: the same code and message. */
function asConnectError(error: unknown): ConnectError {
  const status = error as Partial<grpc.ServiceError>;
  if (typeof status.code === "number") {
    // gRPC status codes and Connect codes are the same numbers.
    return new ConnectError(status.details ?? String(error), status.code as number as Code);
  }
  return new ConnectError(`the inspector could not reach the host: ${String(error)}`, Code.Unavailable);
}

export class HostChannel {
  private readonly client: grpc.Client;

  constructor(readonly options: HostChannelOptions) {
    this.client = new grpc.Client(options.target, options.credentials, {
      "grpc.max_receive_message_length": options.maxMessageBytes,
      "grpc.max_send_message_length": options.maxMessageBytes,
      ...(options.serverName === undefined ? {} : { "grpc.ssl_target_name_override": options.serverName }),
    });
  }

  /** Calls the unary RPC at `path` (e.g. "/toolbridge.v1.ToolBridge/ListTools"); aborting `signal` cancels it. */
  unary(
    path: string,
    request: Uint8Array,
    metadata: grpc.Metadata,
    deadline: number | undefined,
    signal: AbortSignal,
  ): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      const call = this.client.makeUnaryRequest(
        path,
        passThrough,
        passThrough,
        Buffer.from(request),
        metadata,
        deadline === undefined ? {} : { deadline },
        (error, response) => {
          signal.removeEventListener("abort", cancel);
          if (error !== null || response === undefined) reject(asConnectError(error));
          else resolve(response);
        },
      );
      const cancel = () => call.cancel();
      signal.addEventListener("abort", cancel, { once: true });
    });
  }

  /**
   * Calls the server-streaming RPC at `path` and yields its messages as they come; aborting
   * `signal` (the browser went away, or cancelled) cancels the host's call, which aborts the
   * tool (StreamTool) or ends the watch.
   */
  async *stream(
    path: string,
    request: Uint8Array,
    metadata: grpc.Metadata,
    signal: AbortSignal,
  ): AsyncGenerator<Buffer> {
    const call = this.client.makeServerStreamRequest(
      path,
      passThrough,
      passThrough,
      Buffer.from(request),
      metadata,
    );
    const cancel = () => call.cancel();
    signal.addEventListener("abort", cancel, { once: true });
    try {
      for await (const message of call) yield message as Buffer;
    } catch (error) {
      throw asConnectError(error);
    } finally {
      signal.removeEventListener("abort", cancel);
      // A consumer that stops early (the browser's response closed) must not leave the call open.
      call.cancel();
    }
  }

  close(): void {
    this.client.close();
  }
}
