/**
 * Host configuration: defaults (docs/configuration.md), overridden in turn by a JSON config
 * file, TOOLBRIDGE_* environment variables and command-line flags. Every key has
 * one name in each layer, derived from the schema below (sessionTimeoutMs ->
 * TOOLBRIDGE_SESSION_TIMEOUT_MS -> --session-timeout-ms), so the layers cannot drift.
 */
import { readFileSync } from "node:fs";
import { BridgeError, ErrorType } from "@toolbridge/core";
import { z } from "zod";
import { McpServersSchema } from "./mcp/mount/config.js";

const ms = (max: number) => z.coerce.number().int().min(0).max(max);
// A boolean that environment variables and flags can spell as text.
const flag = () =>
  z.union([z.boolean(), z.enum(["true", "false", "1", "0"]).transform((v) => v === "true" || v === "1")]);

const HostConfigSchema = z.strictObject({
  /**
   * Interface to bind: loopback by default. Another interface needs TLS or authentication
   * (or `insecure`), see checkExposure. `unix:/path/to.sock` listens on a Unix domain socket
   * instead (`port` is then unused).
   */
  host: z.string().min(1).default("127.0.0.1"),
  /** 0 picks a free port (tests use this). */
  port: z.coerce.number().int().min(0).max(65535).default(50051),
  /** A session expires this long after its last use (sliding TTL). */
  sessionTimeoutMs: ms(2 ** 31 - 1)
    .min(1)
    .default(300_000),
  maxConcurrentSessions: z.coerce.number().int().min(1).default(1000),
  /** How often expired sessions are swept; 0 derives it from the session timeout. */
  sweepIntervalMs: ms(2 ** 31 - 1).default(0),
  /** Longest a call of a plain tool may run when the tool declares no timeoutMs. */
  toolTimeoutMs: ms(2 ** 31 - 1)
    .min(1)
    .default(30_000),
  /** Longest a streaming tool may take to produce its next chunk when it declares no idleTimeoutMs. */
  streamIdleTimeoutMs: ms(2 ** 31 - 1)
    .min(1)
    .default(30_000),
  /** Longest a whole stream may run when its tool declares no timeoutMs (the total budget). */
  streamTotalTimeoutMs: ms(2 ** 31 - 1)
    .min(1)
    .default(600_000),
  /** Largest message the host receives or sends. */
  maxMessageBytes: z.coerce
    .number()
    .int()
    .min(1024)
    .default(10 * 1024 * 1024),
  keepaliveTimeMs: ms(2 ** 31 - 1).default(30_000),
  keepaliveTimeoutMs: ms(2 ** 31 - 1).default(10_000),
  /** On SIGTERM/SIGINT, in-flight calls get this long to finish before they are cancelled. */
  shutdownGraceMs: ms(2 ** 31 - 1).default(10_000),
  /** Most items one BatchExecuteTools call may carry; larger batches are refused whole. */
  maxBatchSize: z.coerce.number().int().min(1).max(100_000).default(100),
  /** Items of a parallel batch running at once when the request's max_parallel is 0. */
  batchMaxParallel: z.coerce.number().int().min(1).max(10_000).default(10),
  /**
   * Calls of one Calls stream running at once; the host reads no further frames of that
   * stream until one finishes, so HTTP/2 flow control holds the client's writes.
   */
  maxCallsPerStream: z.coerce.number().int().min(1).max(10_000).default(100),
  /** Port of the Prometheus /metrics HTTP endpoint; unset (the default) serves none, 0 picks a free port. */
  metricsPort: z.coerce.number().int().min(0).max(65535).optional(),
  /** Interface of the /metrics endpoint: loopback by default, as tool names and load are not for everyone. */
  metricsHost: z.string().min(1).default("127.0.0.1"),
  /** Largest encoded value a session variable may hold (1 MiB). */
  maxVariableBytes: z.coerce
    .number()
    .int()
    .min(64)
    .default(1024 * 1024),
  /** Most variables one session may hold; more writes creating variables fail with ResourceExhausted. */
  maxVariablesPerSession: z.coerce.number().int().min(1).default(10_000),
  /** How many bytes of updates a variable watcher may fall behind before its watch is ended. */
  watchBufferBytes: z.coerce
    .number()
    .int()
    .min(1024)
    .default(32 * 1024 * 1024),
  /** Bytes of updates all variable watchers of this host may fall behind together; 0: no such limit. */
  maxTotalWatchBufferBytes: z.coerce
    .number()
    .int()
    .min(0)
    .default(256 * 1024 * 1024),
  /**
   * Where sessions, variables and agent records live: "memory" (this process; gone when it
   * exits) or a Redis URL, which several hosts can share and which outlives a restart:
   * redis://[user:password@]host:port/db (rediss:// for TLS), redis+cluster://host:port,...
   * for a Redis Cluster, redis+sentinel://host:port,.../<master group>[/db] for a Sentinel
   * group's master (docs/stores.md).
   */
  store: z
    .string()
    .regex(
      /^(memory|rediss?(\+cluster|\+sentinel)?:\/\/\S+)$/,
      "use memory, redis://host:port/db, redis+cluster://host:port,host:port or redis+sentinel://host:port,host:port/<master group>",
    )
    .default("memory"),
  /**
   * With the Redis store: replicas that must have a write that must not be lost (variable
   * writes, session creation and cleanup, call records) before the host acknowledges it
   * (Redis WAIT); 0 acknowledges it once the master has it (docs/stores.md#failover).
   */
  storeWaitReplicas: z.coerce.number().int().min(0).max(100).default(0),
  /** How long such a write waits for its replicas; past it the write fails with Unavailable. */
  storeWaitTimeoutMs: ms(60_000).min(1).default(1000),
  /**
   * How many of a session's latest variable changes are kept for resuming a watch; their
   * bytes count in maxSessionVariableBytes (and maxTotalVariableBytes), which they are dropped to fit.
   */
  watchHistory: z.coerce.number().int().min(0).max(1_000_000).default(1000),
  /**
   * How long the outcome of a call with a client-chosen request id is kept, so that a retry
   * under that id gets it instead of running the tool again (docs/replay.md); 0 turns replay off.
   */
  replayWindowMs: ms(7 * 24 * 3_600_000).default(600_000),
  /** Most call outcomes one session keeps for replay; beyond it the oldest is forgotten. */
  replayMaxRecords: z.coerce.number().int().min(1).max(1_000_000).default(1000),
  /** Largest encoded call outcome kept for replay; a retry of a larger one gets ResourceExhausted. */
  replayMaxRecordBytes: z.coerce
    .number()
    .int()
    .min(256)
    .default(64 * 1024),
  /** Bytes of call outcomes (with their request ids) one session keeps for replay; beyond it the oldest are forgotten. */
  replayMaxSessionBytes: z.coerce
    .number()
    .int()
    .min(256)
    .default(16 * 1024 * 1024),
  /**
   * With a shared store: the host:port other nodes reach this one at (they forward calls of
   * its session tools here). Empty: the address it listens on (the host name when it
   * listens on every interface).
   */
  advertiseAddress: z.string().default(""),
  /** Python worker processes the host starts and supervises (0: none). */
  workers: z.coerce.number().int().min(0).max(256).default(0),
  /** Python modules (comma-separated) whose @toolbridge.tool functions the workers serve. */
  workerModule: z.string().default(""),
  /** The workers' interpreter, with toolbridge[worker] installed; empty: $TOOLBRIDGE_PYTHON, else python3. */
  workerPython: z.string().default(""),
  /** How often the host pings each worker; a worker silent for 5 pings is replaced. */
  workerHeartbeatMs: ms(60_000).min(10).default(1000),
  /** Recycle a worker after this many calls and agent runs; 0 never. */
  workerMaxRequests: z.coerce.number().int().min(0).default(0),
  /** Recycle a worker this long after it started; 0 never. */
  workerMaxAgeMs: ms(2 ** 31 - 1).default(0),
  /** Recycle a worker whose resident memory exceeds this many MiB; 0 never. */
  workerMaxMemoryMb: z.coerce.number().int().min(0).default(0),
  /** Import DSPy in each worker once it is ready, so agent runs start at once. */
  workerPreloadAgents: flag().default(true),
  /** Send one session's Python tool calls to the same worker while it lives. */
  workerSessionAffinity: flag().default(false),
  /** Serve on an interface other machines reach without TLS or authentication (not recommended). */
  insecure: flag().default(false),
  /** PEM certificate chain of the host: serves TLS (with tlsKey); re-read on SIGHUP. */
  tlsCert: z.string().default(""),
  /** PEM private key of tlsCert. */
  tlsKey: z.string().default(""),
  /** PEM CA bundle: clients must present a certificate it signed (mTLS); its subject is their principal. */
  tlsClientCa: z.string().default(""),
  /**
   * PEM CA bundle this host verifies the certificates of the other hosts sharing its store
   * with, when it forwards calls to them over TLS; empty: tlsClientCa, else the system's roots.
   */
  peerTlsCa: z.string().default(""),
  /** File of `<token> <principal>` lines: every RPC needs `authorization: Bearer <token>`; re-read on SIGHUP. */
  authTokensFile: z.string().default(""),
  /** With authentication on, the health services need it too (off: probes answer without a token). */
  healthRequiresAuth: flag().default(false),
  /** With authentication on, server reflection needs it too. */
  reflectionRequiresAuth: flag().default(true),
  /** With authentication on, the /metrics endpoint needs `Authorization: Bearer <token>` too. */
  metricsRequiresAuth: flag().default(true),
  /** Live sessions one authenticated principal may own; 0: only maxConcurrentSessions applies. */
  maxSessionsPerPrincipal: z.coerce.number().int().min(0).default(100),
  /** Largest session metadata (UTF-8 bytes of its keys and values). */
  maxSessionMetadataBytes: z.coerce
    .number()
    .int()
    .min(0)
    .default(64 * 1024),
  /** Most tags one variable may carry (tags merge over writes). */
  maxTagsPerVariable: z.coerce.number().int().min(0).max(100_000).default(64),
  /** Largest tag: UTF-8 bytes of its key and value. */
  maxTagBytes: z.coerce.number().int().min(2).default(1024),
  /** Server streams (variable watches and StreamTool calls) open on one session at once, per host. */
  maxStreamsPerSession: z.coerce.number().int().min(1).default(64),
  /** Server streams one authenticated principal may have open at once, per host; 0: no such limit. */
  maxStreamsPerPrincipal: z.coerce.number().int().min(0).default(256),
  /** Encoded bytes of all of a session's variables and of the changes kept for resuming its watches. */
  maxSessionVariableBytes: z.coerce
    .number()
    .int()
    .min(64)
    .default(64 * 1024 * 1024),
  /**
   * Encoded bytes the memory store keeps for all sessions (this host's memory): variables and
   * session metadata, which are refused beyond it, and the watch history, call records and
   * deleted names it drops oldest first to stay within it; 0: no such limit.
   */
  maxTotalVariableBytes: z.coerce
    .number()
    .int()
    .min(0)
    .default(1024 * 1024 * 1024),
  /** Most Value nodes (each scalar, list, map, tensor, ...) one request may carry; checked before decoding. */
  maxValueNodes: z.coerce.number().int().min(1).default(10_000),
  /** Finished calls this host keeps in memory for ListRecentCalls (the inspector's calls page); 0 keeps none. */
  recentCalls: z.coerce.number().int().min(0).max(100_000).default(500),
  /**
   * Port the host serves its web inspector on (docs/inspector.md); unset (the default) serves
   * none, 0 picks a free port. Reached through the host's own gRPC port with the browser's
   * token, so it sees what that token may see.
   */
  inspectorPort: z.coerce.number().int().min(0).max(65535).optional(),
  /**
   * Interface of the inspector: loopback by default. Another interface needs TLS or
   * authentication (or `insecure`), as the gRPC port does.
   */
  inspectorHost: z.string().min(1).default("127.0.0.1"),
  /**
   * Port of the MCP endpoint (Streamable HTTP) serving the host's tools to MCP clients; unset
   * (the default) serves none, 0 picks a free port (docs/mcp.md).
   */
  mcpPort: z.coerce.number().int().min(0).max(65535).optional(),
  /** Interface of the MCP endpoint: loopback by default; another needs TLS or authentication, as `host` does. */
  mcpHost: z.string().min(1).default("127.0.0.1"),
  /** Path of the MCP endpoint; `<path>/sessions/<id>` works inside toolbridge session `<id>`. */
  mcpPath: z
    .string()
    .regex(/^\/[A-Za-z0-9._~/-]*[^/]$/, "a path such as /mcp")
    .default("/mcp"),
  /** Comma-separated host names MCP clients reach the endpoint by (Host header), beyond the interface's own. */
  mcpAllowedHosts: z.string().default(""),
  /** Comma-separated host names of web origins whose pages may call the MCP endpoint. */
  mcpAllowedOrigins: z.string().default(""),
  /** 2025-era MCP clients' HTTP sessions open at once; each idle one expires after sessionTimeoutMs. */
  mcpMaxSessions: z.coerce.number().int().min(1).max(100_000).default(256),
  /** MCP servers whose tools the host mounts, by name (docs/mcp.md): stdio commands or HTTP URLs. */
  mcpServers: McpServersSchema,
  /**
   * Record OpenTelemetry spans of RPCs and tool calls, continuing the callers' W3C trace
   * context (docs/tracing.md); exported as the OTEL_* variables say. Off: no OpenTelemetry
   * code is loaded and no span is made.
   */
  tracing: flag().default(false),
  /** With tracing on, record tool arguments and results on execute_tool spans (they may hold personal data). */
  tracingContent: flag().default(false),
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  /**
   * Charge an exception or rejection escaping a tool to its call, which then fails with
   * ToolExecutionError (an AsyncLocalStorage scope per call: measured ~15% of throughput
   * under 64 tiny calls in flight). Off, faults are still contained and logged.
   */
  attributeToolFaults: flag().default(true),
  /** Send host stack traces to clients in ErrorInfo.stacktrace (off: they may leak internals). */
  exposeStackTraces: flag().default(false),
});

export type HostConfig = z.output<typeof HostConfigSchema>;
export type HostConfigInput = Partial<{ [K in keyof HostConfig]: HostConfig[K] | string }>;

export const CONFIG_KEYS = Object.keys(HostConfigSchema.shape) as (keyof HostConfig)[];

export const DEFAULT_CONFIG: Readonly<HostConfig> = Object.freeze(HostConfigSchema.parse({}));

export function envName(key: string): string {
  return `TOOLBRIDGE_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

export function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** Validates a merged configuration; throws BridgeError(ValidationError) naming the key. */
export function parseConfig(input: HostConfigInput, source = "configuration"): HostConfig {
  const result = HostConfigSchema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0];
    const key = issue?.path.join(".") ?? "";
    const message =
      issue?.code === "unrecognized_keys"
        ? `unknown key(s) ${issue.keys.join(", ")}; valid keys: ${CONFIG_KEYS.join(", ")}`
        : `'${key}': ${issue?.message ?? "invalid"}`;
    throw new BridgeError(ErrorType.ValidationError, `invalid ${source}: ${message}`, {
      details: { field: key },
    });
  }
  return result.data;
}

export interface ConfigSources {
  /** Path of a JSON file with any of the keys; TOOLBRIDGE_CONFIG names one too. */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  flags?: HostConfigInput;
}

/** Merges defaults < file < environment < flags, validating each layer with a message that names it. */
export function resolveConfig(sources: ConfigSources = {}): HostConfig {
  const env = sources.env ?? {};
  const file = sources.file ?? env.TOOLBRIDGE_CONFIG;
  let merged: HostConfigInput = {};
  if (file !== undefined && file !== "") {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, "utf8"));
    } catch (error) {
      throw new BridgeError(
        ErrorType.ValidationError,
        `cannot read config file ${file}: ${(error as Error).message}`,
        { details: { field: "config" } },
      );
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new BridgeError(ErrorType.ValidationError, `config file ${file} must hold a JSON object`);
    }
    parseConfig(parsed as HostConfigInput, `config file ${file}`);
    merged = { ...(parsed as HostConfigInput) };
  }
  const fromEnv: HostConfigInput = {};
  for (const key of CONFIG_KEYS) {
    const value = env[envName(key)];
    if (value !== undefined && value !== "") {
      (fromEnv as Record<string, string>)[key] = value;
    }
  }
  parseConfig({ ...merged, ...fromEnv }, "environment variable (TOOLBRIDGE_*)");
  merged = { ...merged, ...fromEnv };
  const flags = Object.fromEntries(Object.entries(sources.flags ?? {}).filter(([, v]) => v !== undefined));
  return parseConfig({ ...merged, ...flags }, "command-line flag");
}

/** The sweep period: the configured one, or a tenth of the session timeout within [50 ms, 30 s]. */
export function sweepInterval(config: HostConfig): number {
  if (config.sweepIntervalMs > 0) return config.sweepIntervalMs;
  return Math.min(30_000, Math.max(50, Math.floor(config.sessionTimeoutMs / 10)));
}
