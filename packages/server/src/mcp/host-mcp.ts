/**
 * MCP in both directions for one host: the endpoint serving its tools to MCP clients
 * (`mcpPort`), stdio serving (`toolbridge mcp`), and the MCP servers it mounts
 * (`mcpServers`). The host composes one of these and starts and stops it with itself.
 */
import type { Registry } from "prom-client";
import { HOST } from "../auth/principal.js";
import { checkExposure } from "../auth/transport.js";
import type { HostConfig } from "../config.js";
import type { RpcHost } from "../rpc/rpc-host.js";
import type { Tool } from "../tools/define.js";
import { type McpEngine, mcpEngine } from "./engine.js";
import type { McpMountState, McpMounts, MountHost } from "./mount/mounts.js";
import type { McpHttpEndpoint } from "./serve/http.js";
import { LegacyInstances } from "./serve/legacy-instances.js";
import type { StdioOptions } from "./serve/stdio.js";

/** What the host gives its MCP side besides its RPC state (RpcHost): its registry and health. */
export interface HostMcpHooks {
  readonly metricsRegistry: Registry;
  globalTool(name: string): Tool | undefined;
  register(tools: readonly Tool[]): void;
  unregister(name: string): void;
  setHealth(service: string, serving: boolean): void;
}

export interface McpStdioOptions extends StdioOptions {
  /** Work inside this toolbridge session (its session tools and variables) instead of with the global tools. */
  readonly sessionId?: string;
}

/**
 * The MCP SDK modules are imported when a part that needs them starts (about 10 MB of heap a
 * host that speaks no MCP does not pay).
 */
export class HostMcp {
  private readonly engine: McpEngine;
  private readonly mountHost: MountHost;
  private mounts: McpMounts | undefined;
  private endpoint: McpHttpEndpoint | undefined;
  private readonly stdioInstances = new LegacyInstances();

  constructor(
    rpc: RpcHost,
    private readonly config: HostConfig,
    hooks: HostMcpHooks,
  ) {
    this.engine = mcpEngine(rpc);
    this.mountHost = {
      log: rpc.log,
      version: rpc.version,
      metricsRegistry: hooks.metricsRegistry,
      globalTool: hooks.globalTool,
      register: hooks.register,
      unregister: hooks.unregister,
      setHealth: hooks.setHealth,
      toolsChanged: () => this.toolsChanged(),
    };
  }

  /** The MCP endpoint's URL once started, when `mcpPort` is set. */
  get url(): string | undefined {
    return this.endpoint?.url;
  }

  /**
   * Refuses an MCP endpoint other machines could reach with neither TLS nor authentication
   * (unless `insecure`), as for the gRPC port.
   */
  checkExposure(tls: boolean, authentication: boolean): void {
    const { mcpPort, mcpHost, insecure } = this.config;
    if (mcpPort === undefined) return;
    checkExposure({ host: mcpHost, port: mcpPort, metricsHost: undefined, tls, authentication, insecure });
  }

  /** Connects the mounts (each server's first attempt) and opens the endpoint. */
  async start(tls: boolean): Promise<void> {
    const { config } = this;
    if (this.mounts === undefined && Object.keys(config.mcpServers).length > 0) {
      const { McpMounts } = await import("./mount/mounts.js");
      this.mounts = new McpMounts(config.mcpServers, this.mountHost);
    }
    await this.mounts?.start();
    if (config.mcpPort === undefined) return;
    const { McpHttpEndpoint } = await import("./serve/http.js");
    this.endpoint = await McpHttpEndpoint.start(this.engine, {
      host: config.mcpHost,
      port: config.mcpPort,
      path: config.mcpPath,
      allowedHosts: list(config.mcpAllowedHosts),
      allowedOrigins: list(config.mcpAllowedOrigins),
      tls: tls ? { cert: config.tlsCert, key: config.tlsKey, clientCa: config.tlsClientCa } : undefined,
      maxSessions: config.mcpMaxSessions,
      idleTimeoutMs: config.sessionTimeoutMs,
    });
  }

  /** Serves MCP on stdin/stdout as the host itself (whoever can start the process has its configuration). */
  async serveStdio(options: McpStdioOptions, onClosed: () => void): Promise<{ close(): Promise<void> }> {
    const scope = { principal: HOST, sessionId: options.sessionId ?? "" };
    const { serveOverStdio } = await import("./serve/stdio.js");
    return serveOverStdio(this.engine, scope, this.stdioInstances, options, onClosed);
  }

  mountStates(): McpMountState[] {
    return this.mounts?.states() ?? [];
  }

  reloadTls(): void {
    this.endpoint?.reloadTls();
  }

  async stop(): Promise<void> {
    await this.endpoint?.close();
    this.endpoint = undefined;
    await this.mounts?.stop();
  }

  private toolsChanged(): void {
    this.endpoint?.toolsChanged();
    this.stdioInstances.toolsChanged();
  }
}

function list(text: string): string[] {
  return text
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");
}
