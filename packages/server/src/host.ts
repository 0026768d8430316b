import { hostname } from "node:os";
import { BridgeError, ErrorType, pb } from "@toolbridge/core";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { AuthenticateHook, Authenticator } from "./auth/authenticator.js";
import { tlsEnabled } from "./auth/certificates.js";
import type { HostCredentials } from "./auth/credentials.js";
import { ANONYMOUS, HOST } from "./auth/principal.js";
import type { HostConfig } from "./config.js";
import { composeHost, type HostParts } from "./host/compose.js";
import { type Serving, startServing } from "./host/listen.js";
import type { CreateSessionOptions, HostOptions, ListeningAddress, SessionInfo } from "./host/options.js";
import { shutDown } from "./host/shutdown.js";
import { handleStopSignals, reloadOnHangup } from "./host/signals.js";
import type { McpStdioOptions } from "./mcp/host-mcp.js";
import type { McpMountState } from "./mcp/mount/mounts.js";
import type { HostMetrics } from "./metrics/metrics.js";
import { describeSessionStore } from "./sessions/factory.js";
import type { SessionManager } from "./sessions/manager.js";
import type { SessionEnded } from "./sessions/session-table.js";
import type { SessionStore } from "./sessions/store.js";
import type { Tool } from "./tools/define.js";
import { containToolFaults } from "./tools/faults.js";
import type { ToolRegistry } from "./tools/registry.js";
import { processTracing } from "./tracing/contract.js";
import { startTracing } from "./tracing/start.js";
import type { VariableService } from "./variables/service.js";
import { SessionVariables } from "./variables/session-variables.js";
import type { WorkerPool } from "./workers/pool.js";

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
  /** Every part of the host, as host/compose.ts built them. */
  private readonly parts: HostParts;
  private readonly registry: ToolRegistry;
  private readonly sessions: SessionManager;
  private readonly metrics: HostMetrics;
  private readonly variableService: VariableService;
  private readonly auth: Authenticator;
  /** The authenticator and the TLS files, reloaded on SIGHUP. */
  private readonly credentials: HostCredentials;
  /** Where sessions and everything kept in them live; with a shared store, also the node and tool directories. */
  private readonly store: SessionStore;
  /** Fires on a second stop signal: cancel the calls in flight now. */
  private readonly impatience = new AbortController();
  /** Set once the host serves, until it stops. */
  private serving: Serving | undefined;
  /** Stops listening for faults escaping tools (tools/faults.ts); set while the host runs. */
  private releaseFaults: (() => void) | undefined;
  /** Stops reloading the credentials on SIGHUP; set while the host runs. */
  private releaseHangup: (() => void) | undefined;
  private stopping: Promise<void> | undefined;
  /**
   * The host's Python workers (`--workers N --worker-module my_tools`): call their tools from
   * TypeScript and run agents on them. Started and stopped with the host; their tools are
   * registered as global tools when it starts. Empty (every call fails with Unavailable)
   * when the host has no workers.
   */
  readonly workers: WorkerPool;

  constructor(options: HostOptions = {}) {
    const parts = composeHost(options);
    this.parts = parts;
    this.config = parts.config;
    this.log = parts.log;
    this.registry = parts.registry;
    this.sessions = parts.sessions;
    this.metrics = parts.metrics;
    this.variableService = parts.variables;
    this.auth = parts.auth;
    this.credentials = parts.credentials;
    this.store = parts.store;
    this.workers = parts.workers;
  }

  /**
   * Plugs in the application's own authentication, e.g. a JWT or OIDC check with a
   * well-kept library: `fn` gets each call's metadata (and bearer token, client
   * certificate, method) and returns the caller's principal name, or `{ name, operator:
   * true }` for a caller with the operator role (it sees every session), or undefined to
   * leave the call to the client certificate (else it is refused with UNAUTHENTICATED);
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
    return this.serving?.listening;
  }

  /**
   * Where the host's own clients (its workers, agents from `runPythonAgent` with
   * `token: host.hostToken`) dial it: the listening address, or on a host serving TLS or
   * having workers a Unix socket in a private directory, plaintext and still authenticated
   * by token, so that they need neither the CA nor a client certificate (and the workers
   * know it when they start). Undefined before start().
   */
  get clientTarget(): string | undefined {
    const serving = this.serving;
    return serving?.internalSocket === undefined
      ? serving?.listening.target
      : `unix:${serving.internalSocket}`;
  }

  /** URL of the Prometheus endpoint once started, when `metricsPort` is set. */
  get metricsUrl(): string | undefined {
    return this.serving?.metricsEndpoint?.url;
  }

  /** URL of the web inspector once started, when `inspectorPort` is set (docs/inspector.md). */
  get inspectorUrl(): string | undefined {
    return this.serving?.inspector?.url;
  }

  /** URL of the MCP endpoint (Streamable HTTP) once started, when `mcpPort` is set. */
  get mcpUrl(): string | undefined {
    return this.parts.mcp.url;
  }

  /**
   * The MCP servers this host mounts (`mcpServers`): each one's connection state, mounted
   * tools and last error. Their health is also reported as the health service
   * `toolbridge.mcp.<name>` (SERVING while connected).
   */
  mcpMounts(): McpMountState[] {
    return this.parts.mcp.mountStates();
  }

  /**
   * Serves the host's tools to one MCP client over stdin/stdout (what `toolbridge mcp`
   * does), as the host itself; with `sessionId`, inside that toolbridge session. `onClosed`
   * is called when the client closes stdin. Call it after start(); keep stdout for MCP alone.
   */
  serveMcpStdio(
    options: McpStdioOptions = {},
    onClosed: () => void = () => {},
  ): Promise<{ close(): Promise<void> }> {
    return this.parts.mcp.serveStdio(options, onClosed);
  }

  /** The registry behind GetMetrics and /metrics, e.g. to merge into an app's own Prometheus endpoint. */
  get metricsRegistry(): Registry {
    return this.metrics.registry;
  }

  /** Binds and starts serving; resolves with the address actually bound (port 0 picks one). */
  async start(): Promise<ListeningAddress> {
    if (this.serving !== undefined)
      throw new BridgeError(ErrorType.ValidationError, "the host is already started");
    // A store that cannot work as configured (e.g. a Redis URL of the wrong form) stops the start.
    await this.store.verify?.();
    await this.startTracing();
    let serving: Serving;
    try {
      serving = await startServing(this.parts);
    } catch (error) {
      await this.stopTracing();
      throw error;
    }
    this.serving = serving;
    this.releaseFaults = containToolFaults(this.log);
    this.releaseHangup = reloadOnHangup(this.credentials);
    this.sessions.startSweeping();
    this.parts.health.setHost(true);
    await this.advertise(serving.listening.port);
    const { config } = this;
    this.log.info(
      {
        address: serving.listening.target,
        tools: this.registry.globalCount,
        metrics: this.metricsUrl,
        mcp: this.mcpUrl,
        mcpMounts: this.parts.mcp.mountStates().length || undefined,
        store: this.storeDescription,
        tls: tlsEnabled(config)
          ? config.tlsClientCa === ""
            ? "on"
            : "on, client certificates required"
          : "off",
        authentication: this.auth.enabled,
        tracing: this.parts.tracing.current !== undefined,
      },
      "toolbridge host serving",
    );
    return serving.listening;
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
    handleStopSignals({
      stop: () => this.stop(),
      impatient: () => this.impatience.abort(),
      onStopped,
      graceMs: this.config.shutdownGraceMs,
      log: this.log,
    });
  }

  /** With a shared store: lists this node's address, where other nodes forward calls of its session tools. */
  private async advertise(port: number): Promise<void> {
    const { nodes } = this.store;
    if (nodes === undefined) return;
    try {
      const token = await nodes.peerToken();
      this.auth.trustPeerToken(token);
      if (this.parts.forwarder !== undefined) this.parts.forwarder.peerToken = token;
    } catch (error) {
      this.log.warn({ err: error }, "could not read the peer token from the session store; no forwarding");
    }
    const { host, advertiseAddress } = this.config;
    const wildcard = host === "0.0.0.0" || host === "::";
    const address = advertiseAddress || (wildcard ? `${hostname()}:${port}` : (this.address?.target ?? ""));
    try {
      await nodes.advertise({ address, tls: tlsEnabled(this.config) });
    } catch (error) {
      // It keeps trying every second; meanwhile other nodes cannot forward calls here.
      this.log.warn({ err: error, address }, "could not advertise this node in the session store yet");
    }
  }

  /** With `tracing` on: the spans (and the OpenTelemetry SDK, unless the application has one) from now on. */
  private async startTracing(): Promise<void> {
    const tracing = await startTracing({
      config: this.config,
      log: this.log,
      node: this.nodeId,
      version: this.parts.rpc.version,
    });
    this.parts.tracing.current = tracing;
    if (tracing !== undefined) processTracing.current = tracing;
  }

  /** Flushes the spans not exported yet; no span is made after this. */
  private async stopTracing(): Promise<void> {
    const tracing = this.parts.tracing.current;
    if (tracing === undefined) return;
    this.parts.tracing.current = undefined;
    if (processTracing.current === tracing) processTracing.current = undefined;
    try {
      await tracing.shutdown();
    } catch (error) {
      this.log.warn({ err: error }, "could not flush the last spans");
    }
  }

  private async shutdown(graceMs: number): Promise<void> {
    this.releaseHangup?.();
    await shutDown(this.parts, this.serving, graceMs, this.impatience.signal);
    await this.stopTracing();
    this.releaseFaults?.();
    this.log.info("toolbridge host stopped");
  }
}
