/** The options of a client and of its calls. */
import type * as grpc from "@grpc/grpc-js";
import type { DecodeOptions } from "@toolbridge/core";

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
