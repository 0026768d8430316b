/**
 * The server instances of live 2025-era MCP connections, in a module of its own: the host keeps
 * one before it knows whether it will serve MCP, and it must not load the SDK for that.
 */
import type { Server } from "@modelcontextprotocol/server";

/** The server instances of live 2025-era connections, which notifications reach one by one. */
export class LegacyInstances {
  private readonly servers = new Set<Server>();

  add(server: Server): void {
    this.servers.add(server);
    const previous = server.onclose;
    server.onclose = () => {
      this.servers.delete(server);
      previous?.();
    };
  }

  /** Tells every 2025-era client that the tool list changed. */
  toolsChanged(): void {
    for (const server of this.servers) {
      server.sendToolListChanged().catch(() => {});
    }
  }

  get size(): number {
    return this.servers.size;
  }
}
