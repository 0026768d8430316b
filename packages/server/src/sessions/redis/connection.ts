/**
 * The Redis store's connection: the one place where the ioredis clients are made (for
 * commands, for the writes that wait for replicas, for Pub/Sub), where commands and Lua
 * scripts run, and where a failure of Redis becomes BridgeError(Unavailable). Every part of
 * the store (sessions/redis/*.ts) reaches Redis through it and holds no client of its own.
 * The store URL says whether it is one Redis, a Redis Cluster or a Sentinel group
 * (target.ts); clients.ts makes the clients for it, faults.ts says what a failure means,
 * keys.ts names every key and channel, scripts/ holds the Lua scripts, one file per part.
 */
import { randomBytes } from "node:crypto";
import { BridgeError, ErrorType } from "@toolbridge/core";
import type { Cluster, Redis, RedisOptions } from "ioredis";
import {
  COMMAND_TIMEOUT_MS,
  type CommandClient,
  commandClient,
  serverOptions,
  subscriberClient,
} from "./clients.js";
import { ClusterSubscriptions } from "./cluster-subscriptions.js";
import { DurableWrites } from "./durable-writes.js";
import { type Classified, classify, type FaultContext, startupError, unavailable } from "./faults.js";
import { keySlot, RedisKeys } from "./keys.js";
import type { LuaScript, ScriptArgument } from "./scripts/lua.js";
import { checkServer, fewestReplicas, firstConnection } from "./server-check.js";
import { ClientSubscriptions, type MessageHandler, type Subscriptions } from "./subscriptions.js";
import { parseRedisTarget, type RedisMode, type RedisTarget, redactRedisUrl } from "./target.js";

export type { ScriptArgument } from "./scripts/lua.js";
export { redactRedisUrl } from "./target.js";

export interface RedisConnectionOptions {
  /**
   * redis://[user:password@]host:port/db (rediss:// for TLS), redis+cluster://host:port,...
   * for a Redis Cluster, or redis+sentinel://host:port,.../<master group>[/db] for the
   * master of a Sentinel group (docs/stores.md).
   */
  readonly url: string;
  /**
   * Prefix of every key and channel, so that several deployments can share one Redis; no
   * braces (they would move the keys' hash tags). Default "toolbridge:".
   */
  readonly keyPrefix?: string;
  /** Extra ioredis options (TLS certificates, timeouts, ...); the store's own settings win. */
  readonly redisOptions?: RedisOptions;
  /**
   * Replicas that must have a write that must not be lost (variable commits, session
   * creation and cleanup, call claims and records) before it is acknowledged (Redis WAIT);
   * 0 (the default) acknowledges it once the master has it.
   */
  readonly waitReplicas?: number;
  /** How long such a write waits for the replicas before it fails with Unavailable. Default 1000. */
  readonly waitTimeoutMs?: number;
}

type ScriptCall = (...args: ScriptArgument[]) => Promise<unknown>;

export class RedisConnection {
  readonly keys: RedisKeys;
  /** Where Redis is, for messages and logs: the URL without its passwords. */
  readonly where: string;
  readonly mode: RedisMode;
  /** This node's name among the nodes sharing the Redis: in messages, claims and the node directory. */
  readonly nodeId = randomBytes(6).toString("hex");
  /** The command COMMIT publishes a change with: SPUBLISH on a Cluster (the session's slot), else PUBLISH. */
  readonly publishCommand: "PUBLISH" | "SPUBLISH";
  private readonly target: RedisTarget;
  /** Commands and scripts. */
  private readonly redis: CommandClient;
  /** With the wait setting: the writes that wait for replicas, on a client of their own. */
  private readonly durable:
    | { readonly client: CommandClient; readonly writes: DurableWrites; readonly timeoutMs: number }
    | undefined;
  private readonly subscriptions: Subscriptions;
  private readonly errorListeners: ((error: Error) => void)[] = [];
  private readonly warningListeners: ((message: string) => void)[] = [];
  /** The scripts defined as commands (define). */
  private readonly defined = new Set<string>();
  /** The last error the command connection reported since it was last ready: why commands fail. */
  private connectionFault: Error | undefined;
  /** What the last check of the Redis reached found wrong with the URL (one Redis only). */
  private misconfigured: Classified | undefined;
  private readonly waitReplicas: number;
  /** verify() runs: it checks the first connection itself. */
  private verifying = false;
  private closed = false;

  constructor(options: RedisConnectionOptions) {
    this.target = parseRedisTarget(options.url);
    this.mode = this.target.mode;
    this.where = redactRedisUrl(options.url);
    const prefix = options.keyPrefix ?? "toolbridge:";
    if (/[{}]/.test(prefix)) {
      throw new BridgeError(
        ErrorType.ValidationError,
        `invalid key prefix ${JSON.stringify(prefix)}: braces would change the keys' hash tags; leave them out`,
        { details: { field: "keyPrefix" } },
      );
    }
    this.keys = new RedisKeys(prefix);
    this.publishCommand = this.mode === "cluster" ? "SPUBLISH" : "PUBLISH";
    this.redis = commandClient(this.target, options.redisOptions);
    this.watch(this.redis);
    this.waitReplicas = options.waitReplicas ?? 0;
    if (this.waitReplicas > 0) {
      const waitMs = options.waitTimeoutMs ?? 1000;
      const client = commandClient(this.target, options.redisOptions, COMMAND_TIMEOUT_MS + waitMs);
      client.on("error", (error: Error) => this.reportError(error));
      const masterOf =
        this.mode === "cluster"
          ? (key: string) => {
              // Before the slot map is known, by slot: a pipeline must not span two masters.
              const slot = keySlot(key);
              return (client as Cluster).slots[slot]?.[0] ?? `slot ${slot}`;
            }
          : () => "";
      this.durable = {
        client,
        writes: new DurableWrites(client, this.waitReplicas, waitMs, masterOf),
        timeoutMs: COMMAND_TIMEOUT_MS + waitMs,
      };
    }
    const run = <T>(command: () => Promise<T>) => this.call(command);
    const report = (error: Error) => this.reportError(error);
    this.subscriptions =
      this.target.mode === "cluster"
        ? new ClusterSubscriptions(
            this.redis as Cluster,
            this.target.nodes,
            serverOptions(this.target, options.redisOptions),
            report,
            run,
          )
        : this.clientSubscriptions(options.redisOptions);
  }

  /**
   * True while the channels every node hears (the session ends) are subscribed: only then
   * does this node hear of every session end, and may trust what it knows without asking Redis.
   */
  get listening(): boolean {
    return this.subscriptions.listening;
  }

  /** True once close() was called: a dropped subscription is then no loss. */
  get closing(): boolean {
    return this.closed;
  }

  /**
   * Registers scripts as commands of the command clients, so that (on one Redis)
   * auto-pipelining batches them like every other command. Every part defines its scripts
   * when it is made, before any command is sent: ioredis copies the defined commands into each
   * pipeline as it makes it, and a command defined later that joins a pipeline made earlier
   * would break it.
   */
  define(...scripts: LuaScript[]): void {
    for (const script of scripts) {
      const name = commandName(script);
      if (this.defined.has(name)) continue;
      this.redis.defineCommand(name, { lua: script.lua, numberOfKeys: script.keys });
      if (script.durable)
        this.durable?.client.defineCommand(name, { lua: script.lua, numberOfKeys: script.keys });
      this.defined.add(name);
    }
  }

  /**
   * Runs a defined `script` (by its hash; ioredis loads it when the server does not know it
   * yet), with replies as Buffers. Its keys must share one Cluster slot; a durable script
   * waits for the replicas of the wait setting.
   */
  run(script: LuaScript, keys: readonly string[], args: readonly ScriptArgument[]): Promise<unknown> {
    const name = commandName(script);
    if (!this.defined.has(name))
      throw new Error(`a Lua script was run before RedisConnection.define: ${script.lua.slice(0, 80)}`);
    assertOneSlot(keys);
    const { durable } = this;
    if (script.durable && durable !== undefined) {
      return this.settle(
        () => durable.writes.run(`${name}Buffer`, keys, args),
        durable.client,
        durable.timeoutMs,
      );
    }
    const commands = this.redis as unknown as Record<string, ScriptCall>;
    return this.call((redis) => (commands[`${name}Buffer`] as ScriptCall).call(redis, ...keys, ...args));
  }

  /** Runs Redis commands; any failure of Redis becomes Unavailable naming it. */
  call<T>(command: (redis: CommandClient) => Promise<T>): Promise<T> {
    return this.settle(() => command(this.redis), this.redis, COMMAND_TIMEOUT_MS);
  }

  /**
   * The names of the keys matching `pattern` (SCAN), sorted. On a Cluster, SCAN walks one
   * node's keys only, so every master is scanned.
   */
  scanKeys(pattern: string): Promise<string[]> {
    return this.call(async (redis) => {
      const servers = this.mode === "cluster" ? (redis as Cluster).nodes("master") : [redis as Redis];
      // No master known yet: the slot map has not been read, so the keys cannot be listed.
      if (servers.length === 0) throw this.connectionFault ?? new Error("Connection is closed.");
      const keys = new Set<string>();
      for (const server of servers) {
        let cursor = "0";
        do {
          const [next, found] = await server.scan(cursor, "MATCH", pattern, "COUNT", 1000);
          for (const key of found) keys.add(key);
          cursor = next;
        } while (cursor !== "0");
      }
      return [...keys].sort();
    });
  }

  /** Subscribes `channel` now and whenever the subscriber connects again. */
  subscribeAlways(channel: string, handler: MessageHandler): void {
    this.subscriptions.subscribeAlways(channel, handler);
  }

  /** Subscribes a session's `channel` until unsubscribe(), or until its connection drops: then `lost` is called. */
  subscribe(channel: string, handler: MessageHandler, lost: () => void): Promise<void> {
    return this.subscriptions.follow(channel, handler, lost);
  }

  unsubscribe(channel: string): void {
    this.subscriptions.unfollow(channel);
  }

  /**
   * Registers a listener told when the subscription of the channels every node hears drops:
   * session ends may have been missed since, and listening is false until it is back.
   */
  onSubscriberLost(listener: () => void): void {
    this.subscriptions.onLost(listener);
  }

  /** Told about connection errors (the connection recovers by itself); for logging. */
  onError(listener: (error: Error) => void): void {
    this.errorListeners.push(listener);
  }

  /** Told about what the start-up check found worth saying (e.g. fewer replicas than the wait setting); for logging. */
  onWarning(listener: (message: string) => void): void {
    this.warningListeners.push(listener);
  }

  reportError(error: Error): void {
    for (const listener of this.errorListeners) listener(error);
  }

  /**
   * A failure of Redis as Unavailable. The message says what happened in the store's terms
   * and what to do: retry for what heals by itself (`retriable = "true"`), or what to change
   * for a configuration that cannot work (`retriable = "false"`, faults.ts). The client
   * library's wording stays in details.reason and the cause, for the logs.
   */
  unavailable(error: unknown): BridgeError {
    if (error instanceof BridgeError) return error;
    return unavailable(classify(error, this.context, this.connectionFault), this.context, error);
  }

  /**
   * The start-up check: waits for Redis (at most a few seconds) and checks that it is what
   * the URL says: throws BridgeError(ValidationError) naming what to change when it is not
   * (a Cluster node behind redis://, a replica, a refused password, sentinels that know no
   * such group). A Redis still unreachable is no reason to refuse: the host starts, its calls
   * fail with Unavailable until Redis is there, and it is checked then.
   */
  async verify(): Promise<void> {
    this.verifying = true;
    try {
      await this.verifyFirstConnection();
    } finally {
      this.verifying = false;
    }
  }

  private async verifyFirstConnection(): Promise<void> {
    const first = await firstConnection(this.redis, this.context);
    if (first.state === "refused") throw startupError(first.fault, this.context);
    if (first.state === "unreachable") {
      this.warn(
        `Redis at ${this.where} is not reachable yet (${first.error?.message ?? "no answer"}); calls fail with Unavailable until it is`,
      );
      return;
    }
    const fault = await this.checkServer();
    if (fault !== undefined) throw startupError(fault, this.context);
    await this.checkReplicas();
  }

  /** Disconnects every client. */
  async close(): Promise<void> {
    this.closed = true;
    const clients: CommandClient[] = [
      this.redis,
      ...(this.durable === undefined ? [] : [this.durable.client]),
    ];
    await Promise.allSettled([this.subscriptions.close(), ...clients.map((client) => client.quit())]);
    for (const client of clients) client.disconnect();
  }

  /** The answer of `command` on `client`, or the store's error for its failure. */
  private async settle<T>(command: () => Promise<T>, client: CommandClient, timeoutMs: number): Promise<T> {
    if (this.misconfigured !== undefined)
      throw unavailable(this.misconfigured, this.context, new Error(this.misconfigured.what));
    try {
      if (this.mode === "cluster" && client.status === "reconnecting") {
        // A Cluster that lost every node would queue the command until one is back.
        throw this.connectionFault ?? new Error("Connection is closed.");
      }
      const answer = command();
      // One that is still connecting queues it too, beyond its commandTimeout.
      const queued = this.mode === "cluster" && client.status !== "ready";
      return await (queued ? withDeadline(answer, timeoutMs) : answer);
    } catch (error) {
      throw this.unavailable(error);
    }
  }

  private get context(): FaultContext {
    return { mode: this.mode, where: this.where };
  }

  private clientSubscriptions(redisOptions: RedisOptions | undefined): ClientSubscriptions {
    const subscriber = subscriberClient(this.target, redisOptions);
    subscriber.on("error", (error: Error) => this.reportError(error));
    return new ClientSubscriptions(
      subscriber,
      (error) => this.reportError(error),
      (command) => this.call(command),
    );
  }

  /** Keeps the last connection error (a refused password reaches commands only as "Connection is closed."). */
  private watch(client: CommandClient): void {
    client.on("error", (error: Error) => {
      this.connectionFault = error;
      this.reportError(error);
    });
    client.on("ready", () => {
      this.connectionFault = undefined;
      // One Redis may have become a replica, or been replaced, since the last check.
      if (this.mode === "single" && !this.closed && !this.verifying) {
        this.checkServer().then(
          (fault) => this.misconfigure(fault),
          () => {},
        );
      }
    });
  }

  private misconfigure(fault: Classified | undefined): void {
    if (fault !== undefined && this.misconfigured === undefined) {
      this.reportError(startupError(fault, this.context));
    }
    this.misconfigured = fault;
  }

  /** What the Redis reached says is wrong with the URL (server-check.ts). */
  private checkServer(): Promise<Classified | undefined> {
    return checkServer(this.redis, this.context, this.connectionFault);
  }

  /** With the wait setting: says so when a master has fewer replicas than it waits for (every such write would fail). */
  private async checkReplicas(): Promise<void> {
    if (this.waitReplicas === 0) return;
    const fewest = await fewestReplicas(this.redis, this.mode);
    if (fewest !== undefined && fewest < this.waitReplicas) {
      this.warn(
        `storeWaitReplicas is ${this.waitReplicas} but a master at ${this.where} has ${fewest} replica(s): ` +
          "the writes that wait for replicas fail with Unavailable until enough are connected",
      );
    }
  }

  private warn(message: string): void {
    for (const listener of this.warningListeners) listener(message);
  }
}

/** The name a script is defined under as a command of the client. */
function commandName(script: LuaScript): string {
  return `toolbridge_${script.sha}`;
}

/** Keys of one script must share a Cluster slot (keys.ts makes them so); a script that does not is a bug. */
function assertOneSlot(keys: readonly string[]): void {
  const [first, ...rest] = keys;
  if (first === undefined || rest.length === 0) return;
  // Keys of one hash tag share its slot, which saves hashing each of them.
  const tag = hashTag(first);
  if (tag !== undefined && rest.every((key) => hashTag(key) === tag)) return;
  const slot = keySlot(first);
  for (const key of rest) {
    if (keySlot(key) !== slot) {
      throw new BridgeError(
        ErrorType.InternalError,
        `the session store would run a script on keys of several Cluster slots (${first}, ${key})`,
      );
    }
  }
}

/** The hash tag of a key (what is between its first "{" and the next "}", when not empty), as Redis Cluster reads it. */
function hashTag(key: string): string | undefined {
  const open = key.indexOf("{");
  const close = open < 0 ? -1 : key.indexOf("}", open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : undefined;
}

function withDeadline<T>(answer: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("Command timed out")), ms);
  });
  return Promise.race([answer, deadline]).finally(() => clearTimeout(timer));
}
