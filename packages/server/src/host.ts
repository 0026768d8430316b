import { rmSync } from "node:fs";
import { createRequire } from "node:module";
import { hostname } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { BridgeError, ErrorType, FILE_DESCRIPTOR_SET_BASE64, pb } from "@toolbridge/core";
import { type Logger, pino } from "pino";
import type { Registry } from "prom-client";
import type { AuthenticateHook, Authenticator } from "./auth/authenticator.js";
import { tlsEnabled } from "./auth/certificates.js";
import { HostCredentials } from "./auth/credentials.js";
import { requireAuthentication } from "./auth/guard.js";
import { ANONYMOUS, HOST } from "./auth/principal.js";
import { checkExposure, isUnixAddress } from "./auth/transport.js";
import { type HostConfig, type HostConfigInput, parseConfig, sweepInterval } from "./config.js";
import { type MetricsEndpoint, serveMetrics } from "./metrics/http.js";
import { HostMetrics } from "./metrics/metrics.js";
import { makePrivateDir, removeStaleDirs } from "./private-dir.js";
import { OpenCallStreams } from "./rpc/call-streams.js";
import { shuttingDown } from "./rpc/calls.js";
import { DescriptorIndex } from "./rpc/descriptors.js";
import { HostHealth, SERVICE_NAME } from "./rpc/health.js";
import { InFlightCalls } from "./rpc/in-flight.js";
import { ReflectionService } from "./rpc/reflection.js";
import { serviceDefinition, serviceImplementation } from "./rpc/service.js";
import { StandardHealthService } from "./rpc/standard-health.js";
import { StreamLimits } from "./rpc/stream-limits.js";
import { ValueCounter } from "./rpc/value-budget.js";
import { type HostRuntime, SHUTTING_DOWN } from "./runtime.js";
import { createSessionStore, describeSessionStore } from "./sessions/factory.js";
import { SessionManager } from "./sessions/manager.js";
import type { SessionEnded } from "./sessions/session-table.js";
import type { SessionStore } from "./sessions/store.js";
import type { Tool } from "./tools/define.js";
import { containToolFaults } from "./tools/faults.js";
import { Forwarder } from "./tools/forward.js";
import { ToolRegistry } from "./tools/registry.js";
import { ReplayLedger } from "./tools/replay.js";
import { VariableService } from "./variables/service.js";
import { SessionVariables } from "./variables/session-variables.js";
import { hostToolsFor } from "./workers/host-tools.js";
import type { WorkerPoolOptions } from "./workers/options.js";
import { WorkerPool } from "./workers/pool.js";

/** The health service name that reports the Python worker pool (SERVING while a worker is ready). */
export const WORKERS_HEALTH_SERVICE = "toolbridge.v1.ToolBridgeWorker";
const VERSION = (createRequire(import.meta.url)("../package.json") as { version: string }).version;
/** The descriptors of every message the host serves: for reflection and the Value budget. */
const DESCRIPTOR_SET = Buffer.from(FILE_DESCRIPTOR_SET_BASE64, "base64");

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

/**
 * The toolbridge host: a gRPC server that owns the tools and sessions of a
 * TypeScript application and serves them to workers.
 *
 *   const host = new ToolBridgeHost({ port: 50051 });
 *   host.registerTool(defineTool({ name: "add", ... }));
 *   await host.start();
 */
export class ToolBridgeHost {
  readonly config: HostConfig;
  readonly log: Logger;
  private readonly registry = new ToolRegistry();
  private readonly sessions: SessionManager;
  private readonly runtime: HostRuntime;
  private readonly health = new HostHealth();
  private readonly standardHealth = new StandardHealthService(this.health);
  private readonly reflection = new ReflectionService(new DescriptorIndex(DESCRIPTOR_SET), [
    SERVICE_NAME,
    "grpc.health.v1.Health",
  ]);
  /** Fires on a second stop signal: cancel the calls in flight now. */
  private readonly impatience = new AbortController();
  private server: grpc.Server | undefined;
  private listening: ListeningAddress | undefined;
  /**
   * The Unix socket of the host's own clients (see clientTarget) when it serves TLS or has
   * workers, bound once it listens, in `privateDir` (which also holds its workers' sockets).
   */
  private internalSocket: string | undefined;
  private privateDir: string | undefined;
  /** Stops listening for faults escaping tools (tools/faults.ts); set while the host runs. */
  private releaseFaults: (() => void) | undefined;
  private stopping: Promise<void> | undefined;
  private readonly metrics: HostMetrics;
  private readonly variableService: VariableService;
  private readonly auth: Authenticator;
  /** The authenticator and the TLS files, reloaded on SIGHUP. */
  private readonly credentials: HostCredentials;
  /** Where sessions and everything kept in them live; with a shared store, also the node and tool directories. */
  private readonly store: SessionStore;
  private metricsEndpoint: MetricsEndpoint | undefined;
  /**
   * The host's Python workers (`--workers N --worker-module my_tools`): call their tools from
   * TypeScript and run agents on them. Started and stopped with the host; their tools are
   * registered as global tools when it starts. Empty (every call fails with Unavailable)
   * when the host has no workers.
   */
  readonly workers: WorkerPool;

  constructor(options: HostOptions = {}) {
    const { store, logger, workerPool, ...config } = options;
    this.config = parseConfig(typeof store === "string" ? { ...config, store } : config, "host options");
    this.log =
      logger ?? pino({ level: this.config.logLevel, base: { service: "toolbridge" } }, pino.destination(2));
    this.credentials = new HostCredentials(this.config, this.log);
    this.auth = this.credentials.auth;
    this.store = typeof store === "object" ? store : createSessionStore(this.config, this.log);
    const { sessions, variables, callRecords, rateSlots, nodes, sessionTools } = this.store;
    this.sessions = new SessionManager({
      sessions,
      timeoutMs: this.config.sessionTimeoutMs,
      sweepIntervalMs: sweepInterval(this.config),
      log: this.log,
      maxSessionsPerPrincipal: this.config.maxSessionsPerPrincipal,
      maxSessionMetadataBytes: this.config.maxSessionMetadataBytes,
    });
    this.sessions.onSessionEnded((event) => this.registry.dropSession(event.id));
    this.metrics = new HostMetrics(
      () => this.sessions.count(),
      this.store.usage === undefined ? undefined : () => this.store.usage?.(),
    );
    this.variableService = new VariableService(this.sessions, variables, this.config, this.log);
    this.workers = new WorkerPool({
      size: this.config.workers,
      modules: this.config.workerModule.split(","),
      python: this.config.workerPython,
      heartbeatIntervalMs: this.config.workerHeartbeatMs,
      heartbeatTimeoutMs: this.config.workerHeartbeatMs * 5,
      maxRequests: this.config.workerMaxRequests,
      maxAgeMs: this.config.workerMaxAgeMs,
      maxMemoryBytes: this.config.workerMaxMemoryMb * 1024 * 1024,
      preloadAgents: this.config.workerPreloadAgents,
      maxMessageBytes: this.config.maxMessageBytes,
      stopGraceMs: this.config.shutdownGraceMs,
      callTimeoutMs: this.config.toolTimeoutMs,
      logger: this.log,
      ...workerPool,
      // The workers call back as the host itself (agent runs), with its token.
      env: { ...(workerPool?.env ?? process.env), TOOLBRIDGE_TOKEN: this.auth.hostToken },
      metricsRegistry: this.metrics.registry,
    });
    this.runtime = {
      config: this.config,
      sessions: this.sessions,
      tools: this.registry,
      variables: this.variableService,
      log: this.log,
      metrics: this.metrics,
      startedAt: Date.now(),
      version: VERSION,
      draining: false,
      health: this.health,
      calls: new InFlightCalls(),
      auth: this.auth,
      streams: new StreamLimits(this.config),
      replay:
        this.config.replayWindowMs > 0
          ? new ReplayLedger(callRecords, {
              node: nodes?.nodeId ?? LOCAL_NODE,
              maxRecordBytes: this.config.replayMaxRecordBytes,
              // With one node, a claim of another node cannot be live.
              isGone: async (node) => nodes === undefined || (await nodes.entry(node)) === undefined,
            })
          : undefined,
      sharedRate: rateSlots && ((tool, limit) => rateSlots.take(tool, limit)),
      forwarder:
        nodes &&
        sessionTools &&
        new Forwarder({ nodes, sessionTools }, this.config.maxMessageBytes, this.credentials.peerTransport),
      callStreams: new OpenCallStreams(),
    };
    // New TLS files: the calls forwarded from now on connect with them.
    this.credentials.onTlsReloaded(() => this.runtime.forwarder?.reconnect());
  }

  /**
   * Plugs in the application's own authentication, e.g. a JWT or OIDC check with a
   * well-kept library: `fn` gets each call's metadata (and bearer token, client
   * certificate, method) and returns the caller's principal name, or undefined to leave
   * the call to the client certificate (else it is refused with UNAUTHENTICATED);
   * throwing refuses it with the error's message. Tokens of the tokens file are checked
   * first. Setting a hook turns authentication on; call it before start().
   */
  authenticate(fn: AuthenticateHook): this {
    this.auth.setHook(fn);
    return this;
  }

  /** True when every call must authenticate (tokens file, client certificates or a hook). */
  get authenticates(): boolean {
    return this.auth.enabled;
  }

  /**
   * Reads the tokens file (`authTokensFile`) again; the host does this on SIGHUP. A file
   * that cannot be read or parsed leaves the tokens in force and is logged; returns
   * whether the new tokens took effect. When they did, every open stream is checked
   * against them (`revalidate`): those whose token is gone end with UNAUTHENTICATED.
   */
  reloadAuthTokens(): boolean {
    return this.credentials.reloadAuthTokens();
  }

  /**
   * Checks the credentials of every open stream (Calls, StreamTool, variable watches,
   * health watches, reflection) again, against the tokens file and the authentication hook
   * as they answer now; a stream whose credentials are no longer accepted, or now name
   * another principal, ends with UNAUTHENTICATED, and the calls it was running are
   * cancelled. Resolves with how many streams ended. Call it when your hook's answer
   * changes (a revoked token, a disabled user): a stream is otherwise authenticated only
   * when it opens, and keeps its principal until it ends. SIGHUP and reloadAuthTokens()
   * do it by themselves.
   */
  revalidate(): Promise<number> {
    return this.auth.revalidate("re-checked by the application");
  }

  /**
   * Reads the TLS files (`tlsCert`, `tlsKey`, `tlsClientCa`, `peerTlsCa`) again; the host
   * does this on SIGHUP. New connections get the new certificate (and client certificates
   * are checked against the new CA); connections already open keep theirs. Files that
   * cannot be read or do not fit leave the ones in force and are logged; returns whether the
   * new files took effect. False before start().
   */
  reloadTlsCertificates(): boolean {
    return this.credentials.reloadTlsCertificates();
  }

  /**
   * A token that authenticates as the host itself, for the host's own clients (its
   * Python workers, `runPythonAgent`): random per process, valid while it runs. Keep it
   * out of logs and command lines; children get it in their environment.
   */
  get hostToken(): string {
    return this.auth.hostToken;
  }

  /**
   * This node's name among the hosts sharing its store (it names the node in errors about
   * forwarded calls); undefined with a store of this process only.
   */
  get nodeId(): string | undefined {
    return this.store.nodes?.nodeId;
  }

  /** Where sessions live: "memory", the Redis URL (without password), or "custom" for a store passed in. */
  get storeDescription(): string {
    return describeSessionStore(this.store);
  }

  /** Registers global tools, visible to every session. */
  registerTool(tool: Tool | readonly Tool[], options: { replace?: boolean } = {}): this {
    for (const one of Array.isArray(tool) ? tool : [tool as Tool]) {
      this.registry.register(one, { replace: options.replace ?? false });
    }
    return this;
  }

  /** Registers tools for one live session; they shadow global tools of the same name and die with it. */
  async registerSessionTool(
    sessionId: string,
    tool: Tool | readonly Tool[],
    options: { replace?: boolean } = {},
  ): Promise<void> {
    await this.sessions.peek(sessionId, HOST);
    for (const one of Array.isArray(tool) ? tool : [tool as Tool]) {
      this.registry.register(one, { sessionId, replace: options.replace ?? false });
      // Listed in the shared store, so that every node lists it and forwards its calls here.
      await this.store.sessionTools?.publish(
        sessionId,
        one.name,
        pb.ToolSpec.encode(one.spec(pb.ToolScope.TOOL_SCOPE_SESSION)).finish(),
      );
    }
  }

  unregisterTool(name: string, sessionId?: string): boolean {
    const removed = this.registry.unregister(name, sessionId);
    if (removed && sessionId !== undefined && this.store.sessionTools !== undefined) {
      this.store.sessionTools.withdraw(sessionId, name).catch((error: unknown) => {
        this.log.warn(
          { err: error, sessionId, tool: name },
          "could not withdraw a session tool from the store",
        );
      });
    }
    return removed;
  }

  /** Names of the tools a session sees (global ones when `sessionId` is omitted). */
  toolNames(sessionId = ""): string[] {
    return this.registry.names(sessionId);
  }

  /**
   * Creates a session from the TypeScript side (or attaches to an existing one, whoever
   * owns it). `options.owner` names the principal whose clients may use it.
   */
  async createSession(
    id = "",
    metadata: Record<string, string> = {},
    options: CreateSessionOptions = {},
  ): Promise<SessionInfo> {
    const owner = options.owner ?? (this.auth.enabled ? HOST.name : ANONYMOUS.name);
    const { record, created } = await this.sessions.create(id, metadata, HOST, owner);
    return {
      id: record.id,
      metadata: record.metadata,
      createdAt: new Date(record.createdAt),
      expiresAt: new Date(this.sessions.expiresAt(record)),
      created,
      owner: record.owner,
    };
  }

  /** Ends a session and drops its tools; throws SessionNotFound when it does not exist. */
  async cleanupSession(id: string): Promise<void> {
    await this.sessions.cleanup(id, HOST);
  }

  async hasSession(id: string): Promise<boolean> {
    return (await this.store.sessions.get(id, Date.now())) !== undefined;
  }

  sessionCount(): Promise<number> {
    return this.sessions.count();
  }

  /**
   * The variables of a session, shared with its workers: read, write, declare, delete,
   * list and watch them with the semantics of the variable RPCs. Writes are recorded as
   * created by "typescript". The session must exist when each operation runs.
   */
  variables(sessionId: string): SessionVariables {
    return new SessionVariables(this.variableService, sessionId);
  }

  /** Called whenever a session ends: cleanup, expiry or shutdown. */
  onSessionEnded(listener: (event: SessionEnded) => void): void {
    this.sessions.onSessionEnded(listener);
  }

  get address(): ListeningAddress | undefined {
    return this.listening;
  }

  /**
   * Where the host's own clients (its workers, agents from `runPythonAgent` with
   * `token: host.hostToken`) dial it: the listening address, or on a host serving TLS or
   * having workers a Unix socket in a private directory, plaintext and still authenticated
   * by token, so that they need neither the CA nor a client certificate (and the workers
   * know it when they start). Undefined before start().
   */
  get clientTarget(): string | undefined {
    return this.internalSocket === undefined ? this.listening?.target : `unix:${this.internalSocket}`;
  }

  /** URL of the Prometheus endpoint once started, when `metricsPort` is set. */
  get metricsUrl(): string | undefined {
    return this.metricsEndpoint?.url;
  }

  /** The registry behind GetMetrics and /metrics, e.g. to merge into an app's own Prometheus endpoint. */
  get metricsRegistry(): Registry {
    return this.metrics.registry;
  }

  /** Binds and starts serving; resolves with the address actually bound (port 0 picks one). */
  async start(): Promise<ListeningAddress> {
    if (this.server !== undefined)
      throw new BridgeError(ErrorType.ValidationError, "the host is already started");
    const { config } = this;
    // A store that cannot work as configured (e.g. a Redis URL of the wrong form) stops the start.
    await this.store.verify?.();
    const server = new grpc.Server({
      "grpc.max_receive_message_length": config.maxMessageBytes,
      "grpc.max_send_message_length": config.maxMessageBytes,
      "grpc.keepalive_time_ms": config.keepaliveTimeMs,
      "grpc.keepalive_timeout_ms": config.keepaliveTimeoutMs,
    });
    const valueBudget = ValueCounter.fromDescriptorSet(DESCRIPTOR_SET).requestCheck(config.maxValueNodes);
    server.addService(
      serviceDefinition(config.maxMessageBytes, valueBudget),
      serviceImplementation(this.runtime),
    );
    const guard = (definition: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation) =>
      requireAuthentication(definition, implementation, this.auth, this.log);
    this.standardHealth.addTo(server, config.healthRequiresAuth ? guard : undefined);
    this.reflection.addTo(server, config.reflectionRequiresAuth ? guard : undefined);
    const tls = tlsEnabled(config);
    checkExposure({
      host: config.host,
      port: config.port,
      metricsHost: config.metricsPort === undefined ? undefined : config.metricsHost,
      tls,
      authentication: this.auth.enabled,
      insecure: config.insecure,
    });
    const credentials = this.credentials.serverCredentials();

    const bindTo = bindAddress(config);
    if (config.metricsPort !== undefined) {
      this.metricsEndpoint = await serveMetrics(
        this.metrics,
        config.metricsHost,
        config.metricsPort,
        this.log,
        config.metricsRequiresAuth && this.auth.enabled
          ? (header) => this.authorizeScrape(header)
          : undefined,
      );
    }
    let internalSocket: string | undefined;
    try {
      internalSocket = await this.preparePrivateDir(tls);
      await this.startWorkers();
    } catch (error) {
      await this.metricsEndpoint?.close();
      this.metricsEndpoint = undefined;
      this.removePrivateDir();
      throw error;
    }
    let port: number;
    try {
      port = await listen(server, bindTo, credentials);
      if (internalSocket !== undefined) {
        await listen(server, `unix:${internalSocket}`, grpc.ServerCredentials.createInsecure());
        this.internalSocket = internalSocket;
      }
    } catch (error) {
      server.forceShutdown();
      await this.metricsEndpoint?.close();
      this.metricsEndpoint = undefined;
      await this.workers.stop({ graceMs: 0 });
      this.removePrivateDir();
      throw error;
    }
    this.server = server;
    this.releaseFaults = containToolFaults(this.log);
    this.credentials.listenForHangup();
    this.sessions.startSweeping();
    this.health.setHost(true);
    this.listening = isUnixAddress(config.host)
      ? { host: config.host, port: 0, target: config.host }
      : { host: config.host, port, target: bindAddress({ host: config.host, port }) };
    await this.advertise(port);
    this.log.info(
      {
        address: this.listening.target,
        tools: this.registry.globalCount,
        metrics: this.metricsUrl,
        store: this.storeDescription,
        tls: tls ? (config.tlsClientCa === "" ? "on" : "on, client certificates required") : "off",
        authentication: this.auth.enabled,
      },
      "toolbridge host serving",
    );
    return this.listening;
  }

  /**
   * Graceful shutdown: health RPCs answer NOT_SERVING and every other new call is refused
   * with UNAVAILABLE while the calls in flight get up to `graceMs` to finish; then the
   * server closes, cancelling the calls still running (their tools see the abort).
   */
  stop(options: { graceMs?: number } = {}): Promise<void> {
    this.stopping ??= this.shutdown(options.graceMs ?? this.config.shutdownGraceMs);
    return this.stopping;
  }

  /** Stops gracefully on SIGTERM/SIGINT; a second signal cancels in-flight calls at once. */
  handleSignals(onStopped: () => void = () => process.exit(0)): void {
    let signalled = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (signalled) {
        this.log.warn({ signal }, "second signal: cancelling in-flight calls now");
        this.impatience.abort();
        return;
      }
      signalled = true;
      this.log.info({ signal, graceMs: this.config.shutdownGraceMs }, "shutting down gracefully");
      this.stop().then(onStopped, (error: unknown) => {
        this.log.error({ err: error }, "shutdown failed");
        process.exit(1);
      });
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  }

  /** With a shared store: lists this node's address, where other nodes forward calls of its session tools. */
  private async advertise(port: number): Promise<void> {
    const { nodes } = this.store;
    if (nodes === undefined) return;
    try {
      const token = await nodes.peerToken();
      this.auth.trustPeerToken(token);
      if (this.runtime.forwarder !== undefined) this.runtime.forwarder.peerToken = token;
    } catch (error) {
      this.log.warn({ err: error }, "could not read the peer token from the session store; no forwarding");
    }
    const { host, advertiseAddress } = this.config;
    const wildcard = host === "0.0.0.0" || host === "::";
    const address = advertiseAddress || (wildcard ? `${hostname()}:${port}` : (this.listening?.target ?? ""));
    try {
      await nodes.advertise({ address, tls: tlsEnabled(this.config) });
    } catch (error) {
      // It keeps trying every second; meanwhile other nodes cannot forward calls here.
      this.log.warn({ err: error, address }, "could not advertise this node in the session store yet");
    }
  }

  /** Authenticates a scrape of /metrics by its Authorization header, as a gRPC call would be. */
  private async authorizeScrape(header: string | undefined): Promise<void> {
    const metadata = new grpc.Metadata();
    if (header !== undefined) metadata.set("authorization", header);
    await this.auth.authenticate({ metadata, getPath: () => "GET /metrics", getAuthContext: () => ({}) });
  }

  /**
   * Removes the private directories of hosts that are gone (killed before they could), then
   * makes this host's when it needs one: for its own clients' socket on a host serving TLS,
   * and for its workers, whose sockets go there and who dial that socket, fixed at their start.
   * Resolves with the socket's path (bound once the host listens), if any.
   */
  private async preparePrivateDir(tls: boolean): Promise<string | undefined> {
    const removed = await removeStaleDirs();
    if (removed.length > 0)
      this.log.info({ removed }, "removed the private directories of hosts that are gone");
    if (!tls && this.workers.size === 0) return undefined;
    this.privateDir = makePrivateDir("toolbridge-host");
    const socket = join(this.privateDir, "host.sock");
    if (this.workers.size > 0) this.workers.attachToHost(this.privateDir, `unix:${socket}`);
    return socket;
  }

  private removePrivateDir(): void {
    if (this.privateDir !== undefined) rmSync(this.privateDir, { recursive: true, force: true });
    this.privateDir = undefined;
  }

  /** Starts the worker pool (when configured) and registers its tools for every session. */
  private async startWorkers(): Promise<void> {
    if (this.workers.size === 0) return;
    reportPoolHealth(this.workers, this.health);
    const { tools } = await this.workers.start();
    try {
      this.registerTool(
        hostToolsFor(this.workers, tools, { sessionAffinity: this.config.workerSessionAffinity }),
      );
    } catch (error) {
      await this.workers.stop({ graceMs: 0 });
      throw error;
    }
  }

  private async shutdown(graceMs: number): Promise<void> {
    const deadline = Date.now() + graceMs;
    this.runtime.draining = true;
    this.credentials.stopListening();
    this.health.setHost(false);
    this.sessions.stopSweeping();
    // Watches and idle call streams never finish by themselves; ending them now keeps them
    // from holding up the grace period.
    this.variableService.drain(SHUTTING_DOWN);
    this.runtime.callStreams.drain();
    const server = this.server;
    if (server !== undefined) {
      // The server keeps listening meanwhile, so that health checks see NOT_SERVING.
      const idle = await this.runtime.calls.whenIdle(graceMs, this.impatience.signal);
      if (idle) await this.close(server, deadline);
      else await this.cancelInFlight(server);
    }
    await this.workers.stop({ graceMs });
    await this.metricsEndpoint?.close();
    await this.store.nodes?.withdraw();
    this.runtime.forwarder?.close();
    await this.store.close();
    this.removePrivateDir();
    this.releaseFaults?.();
    this.log.info("toolbridge host stopped");
  }

  /** Closes a server with no call in flight, once the clients' open streams are done. */
  private async close(server: grpc.Server, deadline: number): Promise<void> {
    this.standardHealth.closeWatches();
    this.reflection.close();
    await new Promise<void>((resolve) => {
      const cancel = () => {
        clearTimeout(timer);
        void this.cancelInFlight(server).then(resolve);
      };
      const timer = setTimeout(cancel, Math.max(0, deadline - Date.now()));
      this.impatience.signal.addEventListener("abort", cancel, { once: true });
      server.tryShutdown(() => {
        clearTimeout(timer);
        this.impatience.signal.removeEventListener("abort", cancel);
        resolve();
      });
    });
  }

  /**
   * Cancels the calls still in flight. Calls on Calls streams are answered first, each with
   * an Unavailable error saying why (briefly waited for); the rest see the server close.
   */
  private async cancelInFlight(server: grpc.Server): Promise<void> {
    if (!this.impatience.signal.aborted) {
      this.log.warn("grace period over: cancelling the calls still in flight");
    }
    await this.runtime.callStreams.abort(GRACE_OVER, ABORT_ANSWER_WAIT_MS);
    server.forceShutdown();
  }
}

/** Binds `server` to `address`; resolves with the bound port, rejects with Unavailable naming the address. */
function listen(server: grpc.Server, address: string, credentials: grpc.ServerCredentials): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    server.bindAsync(address, credentials, (error, bound) => {
      if (error === null) resolve(bound);
      else
        reject(
          new BridgeError(ErrorType.Unavailable, `cannot listen on ${address}: ${error.message}`, {
            cause: error,
          }),
        );
    });
  });
}

/** The node name in call claims when the store is this process's own. */
const LOCAL_NODE = "local";
/** What grpc-js binds: a `unix:` address as it is, else "host:port" (IPv6 in brackets). */
function bindAddress({ host, port }: { host: string; port: number }): string {
  if (isUnixAddress(host)) return host;
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** What a call on a Calls stream still running when the shutdown grace period ends fails with. */
const GRACE_OVER = shuttingDown(
  "the toolbridge host shut down before the call finished (its shutdown grace period ended); " +
    "retry against another host or later",
);

/** How long the answers to calls cancelled at the end of the grace period may take to go out. */
const ABORT_ANSWER_WAIT_MS = 1000;

/** Health of the worker pool under WORKERS_HEALTH_SERVICE: SERVING while at least one worker is ready. */
function reportPoolHealth(pool: WorkerPool, health: HostHealth): void {
  const update = () => health.set(WORKERS_HEALTH_SERVICE, pool.readyCount > 0);
  pool.onChange(update);
  update();
}
