/** The node directory in Redis: each node's address under its name, kept while it runs, and the peer token. */
import { randomBytes } from "node:crypto";
import type { NodeDirectory, NodeEntry } from "../node-directory.js";
import type { RedisConnection } from "./connection.js";

/** A node's address stays in the directory this long after its last refresh. */
const NODE_TTL_MS = 3000;
const NODE_REFRESH_MS = 1000;

export class RedisNodeDirectory implements NodeDirectory {
  private advertising: NodeJS.Timeout | undefined;

  constructor(private readonly redis: RedisConnection) {}

  get nodeId(): string {
    return this.redis.nodeId;
  }

  /**
   * Advertises this node's gRPC address under its nodeId (refreshed every NODE_REFRESH_MS,
   * gone NODE_TTL_MS after the node stops refreshing it), so other nodes can forward calls here.
   */
  async advertise(entry: NodeEntry): Promise<void> {
    const key = this.redis.keys.node(this.nodeId);
    const value = JSON.stringify({ address: entry.address, tls: entry.tls });
    const refresh = () => this.redis.call((r) => r.set(key, value, "PX", NODE_TTL_MS));
    clearInterval(this.advertising);
    this.advertising = setInterval(() => {
      refresh().catch((error: unknown) => this.redis.reportError(error as Error));
    }, NODE_REFRESH_MS);
    this.advertising.unref();
    await refresh();
  }

  /** Stops advertising this node (a graceful stop); its address is removed at once. */
  async withdraw(): Promise<void> {
    this.stop();
    await this.redis.call((r) => r.del(this.redis.keys.node(this.nodeId))).catch(() => {});
  }

  /** The entry a node advertises; undefined once it has stopped (or stopped refreshing it). */
  async entry(node: string): Promise<NodeEntry | undefined> {
    const value = await this.redis.call((r) => r.get(this.redis.keys.node(node)));
    return value === null ? undefined : parseNodeEntry(value);
  }

  /** Every node advertised in the directory (SCAN over the node keys, of every master on a Cluster), by node name. */
  async nodes(): Promise<Map<string, NodeEntry>> {
    const { redis } = this;
    const start = redis.keys.node("");
    const pattern = `${start.replace(/[*?[\]\\]/g, "\\$&")}*`;
    const nodes = new Map<string, NodeEntry>();
    for (const key of await redis.scanKeys(pattern)) {
      const value = await redis.call((r) => r.get(key));
      if (value !== null) nodes.set(key.slice(start.length), parseNodeEntry(value));
    }
    return nodes;
  }

  /** The token the nodes on this Redis (and key prefix) forward calls to each other with. */
  async peerToken(): Promise<string> {
    const key = this.redis.keys.peerToken;
    await this.redis.call((r) => r.set(key, randomBytes(32).toString("base64url"), "NX"));
    const token = await this.redis.call((r) => r.get(key));
    if (token === null) throw this.redis.unavailable(new Error(`${key} vanished`));
    return token;
  }

  /** Stops refreshing this node's entry (the store closes); it leaves the directory at its expiry. */
  stop(): void {
    clearInterval(this.advertising);
    this.advertising = undefined;
  }
}

/** A node's directory entry as stored: JSON, or a bare address (written by hosts that forwarded in plaintext only). */
function parseNodeEntry(value: string): NodeEntry {
  if (!value.startsWith("{")) return { address: value, tls: false };
  const parsed = JSON.parse(value) as { address?: unknown; tls?: unknown };
  return { address: String(parsed.address ?? ""), tls: parsed.tls === true };
}
