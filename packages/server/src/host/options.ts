/** The public types of ToolBridgeHost's options and answers. */
import type { Logger } from "pino";
import type { HostConfigInput } from "../config.js";
import type { SessionStore } from "../sessions/store.js";
import type { WorkerPoolOptions } from "../workers/options.js";

/** The health service name that reports the Python worker pool (SERVING while a worker is ready). */
export const WORKERS_HEALTH_SERVICE = "toolbridge.v1.ToolBridgeWorker";

export interface HostOptions extends Omit<HostConfigInput, "store"> {
  /**
   * Where sessions live: a SessionStore (e.g. a RedisSessionStore built with TLS options
   * of your own, or a store of your own: docs/stores.md), or as in the configuration
   * "memory" (the default) or a Redis URL (redis://host:port/db, rediss://... for TLS).
   */
  store?: SessionStore | string;
  /** A pino logger; by default one writing JSON lines to stderr at `logLevel`. */
  logger?: Logger;
  /**
   * Worker pool options beyond the configuration keys (`workers`, `workerModule`, `worker*`):
   * the interpreter, working directory and environment, timings. Keys set here win.
   */
  workerPool?: Partial<WorkerPoolOptions>;
}

export interface SessionInfo {
  readonly id: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly createdAt: Date;
  readonly expiresAt: Date;
  /** False when the session already existed. */
  readonly created: boolean;
  /** The principal that owns the session. */
  readonly owner: string;
}

export interface CreateSessionOptions {
  /**
   * The principal that owns a session this call creates: only that principal's clients
   * (and the host itself) may use it. Default: "@host" on a host that authenticates
   * callers (the application and its own workers only), else "@anonymous" (every caller).
   */
  owner?: string;
}

export interface ListeningAddress {
  /** The interface, or the `unix:` address of a Unix domain socket. */
  readonly host: string;
  /** The TCP port; 0 on a Unix domain socket. */
  readonly port: number;
  /** What a gRPC client dials: "host:port" (IPv6 in brackets), or the `unix:` address as configured. */
  readonly target: string;
}
