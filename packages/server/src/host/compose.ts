/**
 * The composition root: every part of a host, built from its options and wired together
 * once. ToolBridgeHost (host.ts) is the facade over these parts; nothing else makes them.
 */
import { createRequire } from "node:module";
import { FILE_DESCRIPTOR_SET_BASE64 } from "@toolbridge/core";
import { type Logger, pino } from "pino";
import type { Authenticator } from "../auth/authenticator.js";
import { tlsEnabled } from "../auth/certificates.js";
import { HostCredentials } from "../auth/credentials.js";
import { type HostConfig, parseConfig, sweepInterval } from "../config.js";
import { type HostView, hostView } from "../inspector/host-view.js";
import { HostMcp } from "../mcp/host-mcp.js";
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
import type { CallRecordStore } from "../sessions/call-records.js";
import { createSessionStore, sessionStoreKind } from "../sessions/factory.js";
import { SessionManager } from "../sessions/manager.js";
import type { NodeDirectory } from "../sessions/node-directory.js";
import type { SessionStore } from "../sessions/store.js";
import { CallEngine } from "../tools/engine.js";
import { ToolRegistry } from "../tools/registry.js";
import { ReplayLedger } from "../tools/replay.js";
import type { TracingSlot } from "../tracing/contract.js";
import { VariableService } from "../variables/service.js";
import type { WorkerPoolOptions } from "../workers/options.js";
import { WorkerPool } from "../workers/pool.js";
import type { HostOptions } from "./options.js";

const VERSION = (createRequire(import.meta.url)("../../package.json") as { version: string }).version;
/** The descriptors of every message the host serves: for reflection and the Value budget. */
export const DESCRIPTOR_SET = Buffer.from(FILE_DESCRIPTOR_SET_BASE64, "base64");

/** The node name in call claims when the store is this process's own. */
const LOCAL_NODE = "local";

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
  /** Where sessions and everything kept in them live; with a shared store, also the node and tool directories. */
  readonly store: SessionStore;
  /** With a shared store: finds and calls the session tools other nodes serve. */
  readonly forwarder: Forwarder | undefined;
  /** MCP both ways: the endpoint serving the tools (mcpPort), stdio serving, the mounted servers. */
  readonly mcp: HostMcp;
  /** The host's tracing, shared by the engine, the services and the workers: set when the host starts tracing. */
  readonly tracing: TracingSlot;
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
  const sessionStore = typeof store === "object" ? store : createSessionStore(config, log);
  const { rateSlots, nodes, sessionTools } = sessionStore;
  const sessions = new SessionManager({
    sessions: sessionStore.sessions,
    timeoutMs: config.sessionTimeoutMs,
    sweepIntervalMs: sweepInterval(config),
    log,
    maxSessionsPerPrincipal: config.maxSessionsPerPrincipal,
    maxSessionMetadataBytes: config.maxSessionMetadataBytes,
  });
  sessions.onSessionEnded((event) => registry.dropSession(event.id));
  const metrics = new HostMetrics(
    () => sessions.count(),
    sessionStore.usage === undefined ? undefined : () => sessionStore.usage?.(),
  );
  const variables = new VariableService(sessions, sessionStore.variables, config, log);
  const tracing: TracingSlot = { current: undefined };
  const workers = workerPoolFor(config, log, auth, metrics, workerPool, tracing);
  const forwarder =
    nodes &&
    sessionTools &&
    new Forwarder({ nodes, sessionTools }, config.maxMessageBytes, credentials.peerTransport);
  const engine = new CallEngine({
    config,
    sessions,
    tools: registry,
    metrics,
    log,
    replay: replayLedgerFor(config, sessionStore.callRecords, nodes),
    sharedRate: rateSlots && ((tool, limit) => rateSlots.take(tool, limit)),
    remote: forwarder,
    tracing,
  });
  const health = new HostHealth();
  const operations = operationsViewFor(config, sessionStore, metrics, workers);
  const rpc = rpcHostFor(engine, {
    config,
    sessions,
    variables,
    log,
    metrics,
    auth,
    health,
    operations,
    tracing,
  });
  const reflection = new ReflectionService(new DescriptorIndex(DESCRIPTOR_SET), [
    SERVICE_NAME,
    "grpc.health.v1.Health",
  ]);
  const standardHealth = new StandardHealthService(health);
  const mcp = hostMcpFor(rpc, registry, metrics, health);
  // New TLS files: the calls forwarded from now on connect with them, and MCP clients too.
  credentials.onTlsReloaded(() => {
    forwarder?.reconnect();
    mcp.reloadTls();
  });
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
    store: sessionStore,
    forwarder,
    mcp,
    tracing,
  };
}

/** What the ToolBridge service serves from: the engine, the state, and the wire's own bookkeeping. */
function rpcHostFor(
  engine: CallEngine,
  parts: Pick<
    RpcHost,
    "config" | "sessions" | "variables" | "log" | "metrics" | "auth" | "health" | "operations" | "tracing"
  >,
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

/** What the operations RPCs read: a call log fed by `metrics` from now on, the workers, the store's nodes. */
function operationsViewFor(
  config: HostConfig,
  store: SessionStore,
  metrics: HostMetrics,
  workers: WorkerPool,
): HostView {
  return hostView({
    metrics,
    recentCalls: config.recentCalls,
    store: sessionStoreKind(store),
    tls: tlsEnabled(config),
    nodes: store.nodes,
    workers: () => (workers.size === 0 ? undefined : workers.state()),
  });
}

/** MCP both ways over the host's RPC state: mounted servers' tools go into `registry` as global tools. */
function hostMcpFor(rpc: RpcHost, registry: ToolRegistry, metrics: HostMetrics, health: HostHealth): HostMcp {
  return new HostMcp(rpc, rpc.config, {
    metricsRegistry: metrics.registry,
    globalTool: (name) => registry.resolve("", name),
    register: (tools) => {
      for (const tool of tools) registry.register(tool, { replace: true });
    },
    unregister: (name) => registry.unregister(name),
    setHealth: (service, serving) => health.set(service, serving),
  });
}

/** The replay ledger over the store's call records; undefined when replay is off (replayWindowMs 0). */
function replayLedgerFor(
  config: HostConfig,
  callRecords: CallRecordStore,
  nodes: NodeDirectory | undefined,
): ReplayLedger | undefined {
  if (config.replayWindowMs <= 0) return undefined;
  return new ReplayLedger(callRecords, {
    node: nodes?.nodeId ?? LOCAL_NODE,
    maxRecordBytes: config.replayMaxRecordBytes,
    // With one node, a claim of another node cannot be live.
    isGone: async (node) => nodes === undefined || (await nodes.entry(node)) === undefined,
  });
}

/** The worker pool the configuration asks for (`workers`, `workerModule`, `worker*`), `options` winning. */
function workerPoolFor(
  config: HostConfig,
  log: Logger,
  auth: Authenticator,
  metrics: HostMetrics,
  options: Partial<WorkerPoolOptions> | undefined,
  tracing: TracingSlot,
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
    tracing,
  });
}
