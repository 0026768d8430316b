/**
 * The MCP servers a host mounts (`mcpServers`): one supervised connection each, whose tools
 * are registered as global host tools while the host runs. A server that is down keeps its
 * tools registered (they fail with Unavailable at once); a server whose tool list changes
 * (it reconnected, or its list changed) gets its registered tools updated to match.
 */
import type { Tool as McpTool } from "@modelcontextprotocol/client";
import type { Logger } from "pino";
import { Counter, Gauge, type Registry } from "prom-client";
import type { Tool } from "../../tools/define.js";
import type { McpServerConfig } from "./config.js";
import { MountConnection, type MountState } from "./connection.js";
import { type MountedTool, mountedTools } from "./tools.js";

/** Health service names of the mounts: `toolbridge.mcp.<name>`, SERVING while connected. */
export const MOUNT_HEALTH_PREFIX = "toolbridge.mcp.";

/** What the mounts need of the host. */
export interface MountHost {
  readonly log: Logger;
  readonly version: string;
  readonly metricsRegistry: Registry;
  /** The global tool of that name, if any. */
  globalTool(name: string): Tool | undefined;
  /** Registers global tools, replacing those of the same names. */
  register(tools: readonly Tool[]): void;
  unregister(name: string): void;
  setHealth(service: string, serving: boolean): void;
  /** The registry's tools changed (MCP clients of the host are told). */
  toolsChanged(): void;
}

/** One mount as the host reports it (`host.mcpMounts()`). */
export interface McpMountState {
  readonly name: string;
  /** "stdio" (a command the host runs) or "http". */
  readonly transport: "stdio" | "http";
  /** The command line or URL. */
  readonly server: string;
  readonly state: MountState;
  /** The host's names of the server's mounted tools. */
  readonly tools: readonly string[];
  /** Why the last attempt failed or the connection was lost; "" when none did. */
  readonly lastError: string;
  /** Connections made since the host started. */
  readonly connections: number;
}

interface Mount {
  readonly name: string;
  readonly config: McpServerConfig;
  readonly connection: MountConnection;
  tools: Map<string, MountedTool>;
}

export class McpMounts {
  private readonly mounts: Mount[] = [];
  private readonly connected: Gauge<"mount">;
  private readonly toolCount: Gauge<"mount">;
  private readonly losses: Counter<"mount">;

  constructor(
    configs: Readonly<Record<string, McpServerConfig>>,
    private readonly host: MountHost,
  ) {
    const registers = [host.metricsRegistry];
    this.connected = new Gauge({
      name: "toolbridge_mcp_mount_connected",
      help: "1 while the host is connected to the mounted MCP server, else 0; by mount",
      labelNames: ["mount"],
      registers,
    });
    this.toolCount = new Gauge({
      name: "toolbridge_mcp_mount_tools",
      help: "Tools the host has mounted from the MCP server, by mount",
      labelNames: ["mount"],
      registers,
    });
    this.losses = new Counter({
      name: "toolbridge_mcp_mount_disconnects_total",
      help: "Times the connection to a mounted MCP server was lost, by mount",
      labelNames: ["mount"],
      registers,
    });
    for (const [name, config] of Object.entries(configs)) {
      const connection = new MountConnection(name, config, host.version, host.log, {
        onTools: (tools) => this.update(mount, tools),
        onDown: () => this.down(mount),
      });
      const mount: Mount = { name, config, connection, tools: new Map() };
      this.mounts.push(mount);
      host.setHealth(MOUNT_HEALTH_PREFIX + name, false);
      this.connected.set({ mount: name }, 0);
    }
  }

  get size(): number {
    return this.mounts.length;
  }

  /** Connects to every server (at once); resolves when each has connected or failed its first attempt. */
  async start(): Promise<void> {
    await Promise.all(this.mounts.map((mount) => mount.connection.start()));
  }

  /** Disconnects from every server (stdio servers are stopped) and withdraws their tools. */
  async stop(): Promise<void> {
    await Promise.all(this.mounts.map((mount) => mount.connection.stop()));
    for (const mount of this.mounts) {
      for (const name of mount.tools.keys()) this.host.unregister(name);
      mount.tools.clear();
    }
  }

  states(): McpMountState[] {
    return this.mounts.map(({ name, config, connection, tools }) => ({
      name,
      transport: config.command === undefined ? "http" : "stdio",
      server: connection.target,
      state: connection.state,
      tools: [...tools.keys()],
      lastError: connection.lastError,
      connections: connection.connections,
    }));
  }

  /** The server listed its tools (it connected, or was checked): register what the mount takes. */
  private update(mount: Mount, listed: readonly McpTool[]): void {
    const { tools, skipped } = mountedTools(mount.name, mount.config, mount.connection, listed);
    const next = new Map<string, MountedTool>();
    for (const tool of tools) {
      const mine = mount.tools.get(tool.name);
      if (mine === undefined && this.host.globalTool(tool.name) !== undefined) {
        skipped.push({ tool: tool.remoteName, reason: `the host already has a tool named '${tool.name}'` });
        continue;
      }
      // An unchanged tool stays the registered one: its limits keep counting.
      next.set(tool.name, mine?.signature === tool.signature ? mine : tool);
    }
    for (const { tool, reason } of skipped) {
      this.host.log.warn({ mount: mount.name, tool, reason }, "an MCP server's tool is not mounted");
    }
    const before = [...mount.tools.keys()].sort().join("\n");
    for (const name of mount.tools.keys()) if (!next.has(name)) this.host.unregister(name);
    this.host.register([...next.values()].filter((tool) => mount.tools.get(tool.name) !== tool));
    mount.tools = next;
    this.host.setHealth(MOUNT_HEALTH_PREFIX + mount.name, true);
    this.connected.set({ mount: mount.name }, 1);
    this.toolCount.set({ mount: mount.name }, next.size);
    if ([...next.keys()].sort().join("\n") !== before) this.host.toolsChanged();
  }

  private down(mount: Mount): void {
    this.host.setHealth(MOUNT_HEALTH_PREFIX + mount.name, false);
    this.connected.set({ mount: mount.name }, 0);
    this.losses.inc({ mount: mount.name });
  }
}
