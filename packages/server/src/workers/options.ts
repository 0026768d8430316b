/**
 * Options of a worker pool, with their defaults and checks. The host builds them from its
 * configuration (`--workers`, `--worker-module`, `--worker-*`); a program may pass them to
 * `new WorkerPool(...)` directly.
 */
import { resolve } from "node:path";
import { BridgeError, ErrorType } from "@toolbridge/core";
import type { Logger } from "pino";

export interface WorkerPoolOptions {
  /** Number of worker processes kept running. */
  size: number;
  /** Python modules whose `@toolbridge.tool` functions the workers serve (importable from `cwd`). */
  modules: readonly string[];
  /** The interpreter, with `toolbridge[worker]` installed; default `$TOOLBRIDGE_PYTHON`, else `python3`. */
  python?: string;
  /** The workers' working directory, where modules are looked up first; default this process's. */
  cwd?: string;
  /** The workers' environment; default this process's. */
  env?: NodeJS.ProcessEnv;
  /** Workers starting at once; default 4. */
  startConcurrency?: number;
  /** Longest a worker may take to report ready; default 30 s. */
  startTimeoutMs?: number;
  /** How often the host pings each worker; default 1 s. */
  heartbeatIntervalMs?: number;
  /** A worker silent this long is replaced, and a worker not pinged this long exits; default 5 s. */
  heartbeatTimeoutMs?: number;
  /** Recycle a worker after this many tool calls and agent runs; 0 (the default) never. */
  maxRequests?: number;
  /** Recycle a worker this long after it started; 0 (the default) never. */
  maxAgeMs?: number;
  /** Recycle a worker whose resident memory exceeds this; 0 (the default) never. */
  maxMemoryBytes?: number;
  /**
   * Longest a call may take when it names no timeout (a stream: its whole run); default 30 s,
   * 0 none. A tool's own `timeout_ms` shortens it.
   */
  callTimeoutMs?: number;
  /** On stop (and recycling), calls in flight get this long before the worker is killed; default 5 s. */
  stopGraceMs?: number;
  /** Import DSPy in each worker as soon as it is ready, so agent runs start at once; default true. */
  preloadAgents?: boolean;
  /** Largest message either side sends; default 10 MiB. */
  maxMessageBytes?: number;
  /** Where the pool logs worker starts, exits and replacements; silent by default. */
  logger?: Logger;
  /**
   * The host whose sessions agent runs (`runAgent`) use, e.g. `127.0.0.1:50051`: each worker
   * is started with it and never dials another address. Without it the workers run no agents.
   * A host's own pool (`host.workers`) needs none: it attaches to that host.
   */
  hostAddress?: string;
}

export type ResolvedPoolOptions = Required<Omit<WorkerPoolOptions, "logger" | "env" | "hostAddress">> & {
  env: NodeJS.ProcessEnv;
  logger: Logger | undefined;
  hostAddress: string | undefined;
};

function positive(name: string, value: number, min: number): number {
  if (!Number.isInteger(value) || value < min) {
    throw new BridgeError(
      ErrorType.ValidationError,
      `worker pool option '${name}' must be an integer >= ${min}, got ${value}`,
      { details: { field: name } },
    );
  }
  return value;
}

/** A relative interpreter path (`.venv/bin/python`) means one relative to this process, not to the workers' cwd. */
function interpreter(python: string): string {
  return python.includes("/") ? resolve(python) : python;
}

/** The options with defaults filled in; throws ValidationError naming a bad one. */
export function resolvePoolOptions(options: WorkerPoolOptions): ResolvedPoolOptions {
  const env = options.env ?? process.env;
  const modules = options.modules
    .flatMap((m) => m.split(","))
    .map((m) => m.trim())
    .filter((m) => m !== "");
  const size = positive("size", options.size, 0);
  if (size > 0 && modules.length === 0) {
    throw new BridgeError(
      ErrorType.ValidationError,
      "a worker pool needs at least one Python module (--worker-module my_tools) whose tools it serves",
      { details: { field: "modules" } },
    );
  }
  const heartbeatIntervalMs = positive("heartbeatIntervalMs", options.heartbeatIntervalMs ?? 1000, 10);
  const heartbeatTimeoutMs = positive("heartbeatTimeoutMs", options.heartbeatTimeoutMs ?? 5000, 10);
  if (heartbeatTimeoutMs <= heartbeatIntervalMs) {
    throw new BridgeError(
      ErrorType.ValidationError,
      `worker heartbeat timeout (${heartbeatTimeoutMs} ms) must exceed the interval (${heartbeatIntervalMs} ms)`,
      { details: { field: "heartbeatTimeoutMs" } },
    );
  }
  return {
    size,
    modules,
    python: interpreter(options.python || env.TOOLBRIDGE_PYTHON || "python3"),
    cwd: options.cwd ?? process.cwd(),
    env,
    startConcurrency: positive("startConcurrency", options.startConcurrency ?? 4, 1),
    startTimeoutMs: positive("startTimeoutMs", options.startTimeoutMs ?? 30_000, 1),
    heartbeatIntervalMs,
    heartbeatTimeoutMs,
    maxRequests: positive("maxRequests", options.maxRequests ?? 0, 0),
    maxAgeMs: positive("maxAgeMs", options.maxAgeMs ?? 0, 0),
    maxMemoryBytes: positive("maxMemoryBytes", options.maxMemoryBytes ?? 0, 0),
    callTimeoutMs: positive("callTimeoutMs", options.callTimeoutMs ?? 30_000, 0),
    stopGraceMs: positive("stopGraceMs", options.stopGraceMs ?? 5000, 0),
    preloadAgents: options.preloadAgents ?? true,
    maxMessageBytes: positive("maxMessageBytes", options.maxMessageBytes ?? 10 * 1024 * 1024, 1024),
    logger: options.logger,
    hostAddress: options.hostAddress || undefined,
  };
}
