/**
 * The composition root: every part of a host, built from its options and wired together
 * once. ToolBridgeHost (host.ts) is the facade over these parts; nothing else makes them.
 */
import { createRequire } from "node:module";
import { FILE_DESCRIPTOR_SET_BASE64 } from "@toolbridge/core";
import { type Logger, pino } from "pino";
import type { Authenticator } from "../auth/authenticator.js";
import { HostCredentials } from "../auth/credentials.js";
import { type HostConfig, parseConfig, sweepInterval } from "../config.js";
import { HostMetrics } from "../metrics/metrics.js";
import { Forwarder } from "../peers/forwarder.js";
import { OpenCallStreams } from "../rpc/call-streams.js";
import { DescriptorIndex } from "../rpc/descriptors.js";
import { HostHealth, SERVICE_NAME } from "../rpc/health-status.js";
import { InFlightCalls } from "../rpc/in-flight.js";
import { ReflectionService } from "../rpc/reflection.js";
import type { RpcHost } from "../rpc/rpc-host.js";
import { StandardHealthService } from "../rpc/standard-health.js";
import { StreamLimits } from "../rpc/stream-limits.js";
import { SessionManager } from "../sessions/manager.js";
import { InMemorySessionStore } from "../sessions/memory-store.js";
import { RedisSessionStore } from "../sessions/redis-store.js";
import { isShared, type SessionStore, type SharedSessionStore } from "../sessions/store.js";
import { CallEngine } from "../tools/engine.js";
import { ToolRegistry } from "../tools/registry.js";
import { ReplayLedger } from "../tools/replay.js";
import { VariableService } from "../variables/service.js";
import type { WorkerPoolOptions } from "../workers/options.js";
import { WorkerPool } from "../workers/pool.js";
import type { HostOptions } from "./options.js";

const VERSION = (createRequire(import.meta.url)("../../package.json") as { version: string }).version;
/** The descriptors of every message the host serves: for reflection and the Value budget. */
export const DESCRIPTOR_SET = Buffer.from(FILE_DESCRIPTOR_SET_BASE64, "base64");

/** The node name in call claims when the store is this process's own. */
const LOCAL_NODE = "local";
/** Logs a store's connection errors at most once per this interval (the store retries by itself). */
const STORE_ERROR_LOG_INTERVAL_MS = 10_000;

/** A host's parts. */
export interface HostParts {
  readonly config: HostConfig;
  readonly log: Logger;
  /** The authenticator and the TLS files, reloaded on SIGHUP. */
  readonly credentials: HostCredentials;
  readonly auth: Authenticator;
  readonly registry: ToolRegistry;
  readonly sessions: SessionManager;
  readonly metrics: HostMetrics;
  readonly variables: VariableService;
  /** The host's Python workers; empty (size 0) when it has none. */
  readonly workers: WorkerPool;
  /** Runs every tool call, whichever way it comes in. */
  readonly engine: CallEngine;
  /** What the ToolBridge service serves from; `draining` is set here when shutdown begins. */
  readonly rpc: RpcHost;
  readonly health: HostHealth;
  readonly standardHealth: StandardHealthService;
  readonly reflection: ReflectionService;
  /** The store when several nodes share it (Redis): the node directory and shared limits. */
  readonly shared: SharedSessionStore | undefined;
  /** With a shared store: finds and calls the session tools other nodes serve. */
  readonly forwarder: Forwarder | undefined;
}

/** Builds a host's parts from its options; throws ValidationError naming a bad option. */
export function composeHost(options: HostOptions): HostParts {
  const { store, logger, workerPool, ...input } = options;
  const config = parseConfig(typeof store === "string" ? { ...input, store } : input, "host options");
  const log =
    logger ?? pino({ level: config.logLevel, base: { service: "toolbridge" } }, pino.destination(2));
  const credentials = new HostCredentials(config, log);
  const { auth } = credentials;
  const registry = new ToolRegistry();
  const sessions = new SessionManager({
    store: typeof store === "object" ? store : configuredStore(config, log),
    timeoutMs: config.sessionTimeoutMs,
    sweepIntervalMs: sweepInterval(config),
    log,
    maxSessionsPerPrincipal: config.maxSessionsPerPrincipal,
    maxSessionMetadataBytes: config.maxSessionMetadataBytes,
  });
  sessions.onSessionEnded((event) => registry.dropSession(event.id));
  const sessionStore = sessions.store;
  const shared = isShared(sessionStore) ? sessionStore : undefined;
  const metrics = new HostMetrics(
    () => sessions.count(),
    sessionStore.usage === undefined ? undefined : () => sessionStore.usage?.(),
  );
  const variables = new VariableService(sessions, config, log);
  const workers = workerPoolFor(config, log, auth, metrics, workerPool);
  const forwarder = shared && new Forwarder(shared, config.maxMessageBytes, credentials.peerTransport);
  // New TLS files: the calls forwarded from now on connect with them.
  credentials.onTlsReloaded(() => forwarder?.reconnect());
  const engine = new CallEngine({
    config,
    sessions,
    tools: registry,
    metrics,
    log,
    replay: replayLedgerFor(config, sessionStore, shared),
    sharedRate: shared && ((tool, limit) => shared.takeRateSlot(tool, limit)),
    remote: forwarder,
  });
  const health = new HostHealth();
  const rpc = rpcHostFor(engine, { config, sessions, variables, log, metrics, auth, health });
  const reflection = new ReflectionService(new DescriptorIndex(DESCRIPTOR_SET), [
    SERVICE_NAME,
    "grpc.health.v1.Health",
  ]);
  const standardHealth = new StandardHealthService(health);
  return {
    config,
    log,
    credentials,
    auth,
    registry,
    sessions,
    metrics,
    variables,
    workers,
    engine,
    rpc,
    health,
    standardHealth,
    reflection,
    shared,
    forwarder,
  };
}

/** What the ToolBridge service serves from: the engine, the state, and the wire's own bookkeeping. */
function rpcHostFor(
  engine: CallEngine,
  parts: Pick<RpcHost, "config" | "sessions" | "variables" | "log" | "metrics" | "auth" | "health">,
): RpcHost {
  return {
    ...parts,
    engine,
    startedAt: Date.now(),
    version: VERSION,
    draining: false,
    calls: new InFlightCalls(),
    streams: new StreamLimits(parts.config),
    callStreams: new OpenCallStreams(),
  };
}

/** The store the configuration names: this process's memory, or Redis (its connection errors logged). */
function configuredStore(config: HostConfig, log: Logger): SessionStore {
  const options = {
    timeoutMs: config.sessionTimeoutMs,
    maxSessions: config.maxConcurrentSessions,
    watchHistory: config.watchHistory,
    maxSessionBytes: config.maxSessionVariableBytes,
    maxTotalBytes: config.maxTotalVariableBytes,
    callRecords: {
      windowMs: config.replayWindowMs,
      maxRecords: config.replayMaxRecords,
      maxBytes: config.replayMaxSessionBytes,
    },
  };
  if (config.store === "memory") return new InMemorySessionStore(options);
  const store = new RedisSessionStore({ ...options, url: config.store });
  let lastLogged = 0;
  store.onConnectionError((error) => {
    const now = Date.now();
    if (now - lastLogged < STORE_ERROR_LOG_INTERVAL_MS) return;
    lastLogged = now;
    log.warn(
      { err: error, store: store.description },
      "session store (Redis) connection error; calls that need it fail with Unavailable until it is back",
    );
  });
  return store;
}

/** The replay ledger over the store's call records; undefined when replay is off (replayWindowMs 0). */
function replayLedgerFor(
  config: HostConfig,
  store: SessionStore,
  shared: SharedSessionStore | undefined,
): ReplayLedger | undefined {
  if (config.replayWindowMs <= 0) return undefined;
  return new ReplayLedger(store, {
    node: shared?.nodeId ?? LOCAL_NODE,
    maxRecordBytes: config.replayMaxRecordBytes,
    // With one node, a claim of another node cannot be live.
    isGone: async (node) => shared === undefined || (await shared.nodeEntry(node)) === undefined,
  });
}

/** The worker pool the configuration asks for (`workers`, `workerModule`, `worker*`), `options` winning. */
function workerPoolFor(
  config: HostConfig,
  log: Logger,
  auth: Authenticator,
  metrics: HostMetrics,
  options: Partial<WorkerPoolOptions> | undefined,
): WorkerPool {
  return new WorkerPool({
    size: config.workers,
    modules: config.workerModule.split(","),
    python: config.workerPython,
    heartbeatIntervalMs: config.workerHeartbeatMs,
    heartbeatTimeoutMs: config.workerHeartbeatMs * 5,
    maxRequests: config.workerMaxRequests,
    maxAgeMs: config.workerMaxAgeMs,
    maxMemoryBytes: config.workerMaxMemoryMb * 1024 * 1024,
    preloadAgents: config.workerPreloadAgents,
    maxMessageBytes: config.maxMessageBytes,
    stopGraceMs: config.shutdownGraceMs,
    callTimeoutMs: config.toolTimeoutMs,
    logger: log,
    ...options,
    // The workers call back as the host itself (agent runs), with its token.
    env: { ...(options?.env ?? process.env), TOOLBRIDGE_TOKEN: auth.hostToken },
    metricsRegistry: metrics.registry,
  });
}
