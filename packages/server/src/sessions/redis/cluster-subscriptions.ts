/**
 * Pub/Sub on a Redis Cluster (docs/stores.md#cluster). The session ends are published with
 * PUBLISH, which the cluster's bus carries to every node, so one subscriber on any node hears
 * them; it moves to another node when its own goes. A session's changes are published with
 * SPUBLISH by the commit script on the node that holds the session's slot, and only that
 * node delivers them: this node follows them with one SSUBSCRIBE connection per master,
 * chosen by the channel's slot. When a connection drops, or the cluster moves a slot away
 * from its node (the node then unsubscribes its channels itself), every channel it carried
 * is reported lost: the watches on them end and resume elsewhere, instead of missing changes.
 */
import { type Cluster, Redis, type RedisOptions } from "ioredis";
import { keySlot } from "./keys.js";
import type { MessageHandler, Subscriptions } from "./subscriptions.js";
import type { Endpoint } from "./target.js";

interface Followed {
  readonly handler: MessageHandler;
  readonly lost: () => void;
}

/** One SSUBSCRIBE connection to a master, and the channels it carries. */
interface Shard {
  readonly redis: Redis;
  readonly channels: Map<string, Followed>;
}

/** Attempts of one SSUBSCRIBE that meets a slot moved since the cluster's slot map was read. */
const FOLLOW_ATTEMPTS = 3;

export class ClusterSubscriptions implements Subscriptions {
  private readonly always = new Map<string, MessageHandler>();
  private readonly shards = new Map<string, Shard>();
  private readonly lostListeners: (() => void)[] = [];
  private alwaysSubscriber: Redis | undefined;
  private subscribed = false;
  private whenReady: Promise<void> | undefined;
  private attempts = 0;
  private closed = false;

  constructor(
    private readonly cluster: Cluster,
    private readonly seeds: readonly Endpoint[],
    /** Credentials, TLS and timeouts of a connection to one node. */
    private readonly nodeOptions: RedisOptions,
    private readonly reportError: (error: Error) => void,
    private readonly call: <T>(command: () => Promise<T>) => Promise<T>,
  ) {
    this.connectAlways();
  }

  get listening(): boolean {
    return this.subscribed;
  }

  subscribeAlways(channel: string, handler: MessageHandler): void {
    this.always.set(channel, handler);
    if (this.subscribed)
      this.alwaysSubscriber?.subscribe(channel).catch((error: unknown) => this.reportError(error as Error));
  }

  async follow(channel: string, handler: MessageHandler, lost: () => void): Promise<void> {
    await this.call(async () => {
      // The slot map comes with the cluster's first connection.
      if (this.cluster.status !== "ready") await this.ready();
      for (let attempt = 1; ; attempt++) {
        const shard = this.shardOf(channel);
        shard.channels.set(channel, { handler, lost });
        try {
          await shard.redis.ssubscribe(channel);
          return;
        } catch (error) {
          shard.channels.delete(channel);
          if (attempt >= FOLLOW_ATTEMPTS || !/^(MOVED|ASK) /.test((error as Error).message)) throw error;
          await this.refreshSlots();
        }
      }
    });
  }

  unfollow(channel: string): void {
    for (const shard of this.shards.values()) {
      if (shard.channels.delete(channel)) shard.redis.sunsubscribe(channel).catch(() => {});
    }
  }

  onLost(listener: () => void): void {
    this.lostListeners.push(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const shard of this.shards.values()) {
      shard.channels.clear();
      shard.redis.disconnect();
    }
    this.shards.clear();
    this.alwaysSubscriber?.disconnect();
  }

  /** The shard connection of the master serving `channel`'s slot, made on first use. */
  private shardOf(channel: string): Shard {
    const node = this.cluster.slots[keySlot(channel)]?.[0];
    if (node === undefined)
      throw new Error("CLUSTERDOWN no node of the cluster serves the slot of the channel");
    let shard = this.shards.get(node);
    if (shard === undefined) {
      const redis = this.nodeConnection(parseNode(node));
      const made: Shard = { redis, channels: new Map() };
      shard = made;
      this.shards.set(node, made);
      redis.on("error", (error: Error) => this.reportError(error));
      redis.on("smessageBuffer", (name: Buffer, message: Buffer) =>
        this.deliver(made.channels.get(name.toString())?.handler, message),
      );
      // The node unsubscribed a channel itself: its slot moved to another node.
      redis.on("moved", () => redis.disconnect());
      redis.on("end", () => this.shardLost(node, made));
    }
    return shard;
  }

  private shardLost(node: string, shard: Shard): void {
    if (this.shards.get(node) === shard) this.shards.delete(node);
    const channels = [...shard.channels.values()];
    shard.channels.clear();
    if (this.closed) return;
    this.cluster.refreshSlotsCache();
    for (const { lost } of channels) lost();
  }

  /** Subscribes the always-channels on some node, and on another when that one goes. */
  private connectAlways(): void {
    if (this.closed) return;
    const known = this.cluster.nodes("master").map((node) => ({
      host: String(node.options.host),
      port: Number(node.options.port),
    }));
    const candidates = known.length > 0 ? known : this.seeds;
    const endpoint = candidates[this.attempts % candidates.length] as Endpoint;
    this.attempts += 1;
    const redis = this.nodeConnection(endpoint);
    this.alwaysSubscriber = redis;
    redis.on("error", (error: Error) => this.reportError(error));
    redis.on("messageBuffer", (channel: Buffer, message: Buffer) =>
      this.deliver(this.always.get(channel.toString()), message),
    );
    redis.on("ready", () => {
      const channels = [...this.always.keys()];
      const subscribing = channels.length > 0 ? redis.subscribe(...channels) : Promise.resolve(0);
      subscribing.then(
        () => {
          this.subscribed = true;
          this.attempts = 0;
        },
        (error: unknown) => {
          this.reportError(error as Error);
          redis.disconnect();
        },
      );
    });
    redis.on("end", () => {
      const wasSubscribed = this.subscribed;
      this.subscribed = false;
      if (this.closed) return;
      if (wasSubscribed) for (const listener of this.lostListeners) listener();
      setTimeout(() => this.connectAlways(), Math.min(50 * this.attempts, 1000)).unref();
    });
  }

  /** A connection to one node that does not reconnect by itself: its loss is reported instead. */
  private nodeConnection(endpoint: Endpoint): Redis {
    return new Redis({
      ...this.nodeOptions,
      host: endpoint.host,
      port: endpoint.port,
      retryStrategy: () => null,
      autoResubscribe: false,
      enableAutoPipelining: false,
      maxRetriesPerRequest: 0,
    });
  }

  /** Settles when the cluster client is ready (one promise for every follow waiting). */
  private ready(): Promise<void> {
    this.whenReady ??= new Promise<void>((resolve) =>
      this.cluster.once("ready", () => {
        this.whenReady = undefined;
        resolve();
      }),
    );
    return this.whenReady;
  }

  private refreshSlots(): Promise<void> {
    return new Promise((resolve) => this.cluster.refreshSlotsCache(() => resolve()));
  }

  /** A Pub/Sub message. It runs inside ioredis's event handler, where a throw would end the process. */
  private deliver(handler: MessageHandler | undefined, message: Buffer): void {
    try {
      handler?.(message);
    } catch (error) {
      this.reportError(error as Error);
    }
  }
}

/** "host:port" (the cluster's node key) as an endpoint. */
function parseNode(node: string): Endpoint {
  const colon = node.lastIndexOf(":");
  return { host: node.slice(0, colon), port: Number(node.slice(colon + 1)) };
}
