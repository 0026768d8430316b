/**
 * The Redis store's connection: the one place where the ioredis clients are made (one for
 * commands, one for Pub/Sub), where commands and Lua scripts run, and where a failure of
 * Redis becomes BridgeError(Unavailable). Every part of the store (sessions/redis/*.ts)
 * reaches Redis through it and holds no client of its own, so connecting another way (a
 * Redis Cluster, Sentinel) is a change of this file. keys.ts names every key and channel;
 * scripts/ holds the Lua scripts, one file per part.
 */
import { randomBytes } from "node:crypto";
import { BridgeError, ErrorType } from "@toolbridge/core";
import { Redis, type RedisOptions } from "ioredis";
import { RedisKeys } from "./keys.js";
import type { LuaScript } from "./scripts/lua.js";

export interface RedisConnectionOptions {
  /** redis://[user:password@]host:port/db, or rediss://... for TLS. */
  readonly url: string;
  /** Prefix of every key and channel, so that several deployments can share one Redis. */
  readonly keyPrefix?: string;
  /** Extra ioredis options (TLS certificates, timeouts, ...); the store's own settings win. */
  readonly redisOptions?: RedisOptions;
}

export type ScriptArgument = string | Buffer | number;

type ScriptCall = (...args: ScriptArgument[]) => Promise<unknown>;

type MessageHandler = (message: Buffer) => void;

export class RedisConnection {
  readonly keys: RedisKeys;
  /** Where Redis is, for messages and logs: the URL without its password. */
  readonly where: string;
  /** This node's name among the nodes sharing the Redis: in messages, claims and the node directory. */
  readonly nodeId = randomBytes(6).toString("hex");
  /** Commands and scripts. */
  private readonly redis: Redis;
  /** Pub/Sub: session ends and the changes of followed sessions. */
  private readonly subscriber: Redis;
  /** Channels subscribed on every connection of the subscriber (the session ends). */
  private readonly permanent = new Map<string, MessageHandler>();
  /** Channels subscribed until the subscriber's connection drops (a followed session's changes). */
  private readonly transient = new Map<string, MessageHandler>();
  private readonly lostListeners: (() => void)[] = [];
  private readonly errorListeners: ((error: Error) => void)[] = [];
  /** The scripts defined as commands (define). */
  private readonly defined = new Set<string>();
  private subscribed = false;
  private closed = false;

  constructor(options: RedisConnectionOptions) {
    const { url } = options;
    if (!/^rediss?:\/\//.test(url)) {
      throw new BridgeError(
        ErrorType.ValidationError,
        `invalid Redis URL ${JSON.stringify(redactRedisUrl(url))}: use redis://host:port/db or rediss://host:port/db`,
        { details: { field: "store" } },
      );
    }
    this.where = redactRedisUrl(url);
    this.keys = new RedisKeys(options.keyPrefix ?? "toolbridge:");
    const common: RedisOptions = {
      ...options.redisOptions,
      // A command whose connection drops fails at once (the caller gets Unavailable)
      // instead of being sent again after a reconnect, where a write could apply twice.
      maxRetriesPerRequest: 0,
      retryStrategy: (attempt) => Math.min(50 * attempt, 1000),
      enableAutoPipelining: true,
    };
    this.redis = new Redis(url, { commandTimeout: 10_000, ...common });
    this.subscriber = new Redis(url, { ...common, autoResubscribe: false, enableAutoPipelining: false });
    this.redis.on("error", (error: Error) => this.reportError(error));
    this.subscriber.on("error", (error: Error) => this.reportError(error));
    this.subscriber.on("ready", () => this.resubscribe());
    this.subscriber.on("close", () => this.subscriberLost());
    this.subscriber.on("messageBuffer", (channel: Buffer, message: Buffer) => this.message(channel, message));
  }

  /**
   * True while the permanent channels are subscribed: only then does this node hear of
   * every session end, and may trust what it knows without asking Redis.
   */
  get listening(): boolean {
    return this.subscribed;
  }

  /** True once close() was called: a dropped subscription is then no loss. */
  get closing(): boolean {
    return this.closed;
  }

  /**
   * Registers scripts as commands of the command client, so that auto-pipelining batches
   * them like every other command. Every part defines its scripts when it is made, before any
   * command is sent: ioredis copies the defined commands into each auto-pipeline as it makes
   * it, and a command defined later that joins a pipeline made earlier would break it.
   */
  define(...scripts: LuaScript[]): void {
    for (const script of scripts) {
      const name = commandName(script);
      if (this.defined.has(name)) continue;
      this.redis.defineCommand(name, { lua: script.lua, numberOfKeys: script.keys });
      this.defined.add(name);
    }
  }

  /**
   * Runs a defined `script` (by its hash; ioredis loads it when the server does not know it
   * yet), with replies as Buffers.
   */
  run(script: LuaScript, keys: readonly string[], args: readonly ScriptArgument[]): Promise<unknown> {
    const commands = this.redis as unknown as Record<string, ScriptCall | undefined>;
    const run = commands[`${commandName(script)}Buffer`];
    if (run === undefined)
      throw new Error(`a Lua script was run before RedisConnection.define: ${script.lua.slice(0, 80)}`);
    return this.call((redis) => run.call(redis, ...keys, ...args));
  }

  /** Runs Redis commands; any failure of Redis becomes Unavailable naming it. */
  async call<T>(command: (redis: Redis) => Promise<T>): Promise<T> {
    try {
      return await command(this.redis);
    } catch (error) {
      throw this.unavailable(error);
    }
  }

  /** Subscribes `channel` now and whenever the subscriber connects again. */
  subscribeAlways(channel: string, handler: MessageHandler): void {
    this.permanent.set(channel, handler);
    if (this.subscribed)
      this.subscriber.subscribe(channel).catch((error: unknown) => this.reportError(error as Error));
  }

  /** Subscribes `channel` until unsubscribe() or until the subscriber's connection drops (onSubscriberLost). */
  async subscribe(channel: string, handler: MessageHandler): Promise<void> {
    this.transient.set(channel, handler);
    await this.call(() => this.subscriber.subscribe(channel));
  }

  unsubscribe(channel: string): void {
    this.transient.delete(channel);
    if (this.subscribed) this.subscriber.unsubscribe(channel).catch(() => {});
  }

  /**
   * Registers a listener told when the subscriber's connection drops: messages may have
   * been missed since, the transient channels are no longer subscribed, and listening is
   * false until it is back.
   */
  onSubscriberLost(listener: () => void): void {
    this.lostListeners.push(listener);
  }

  /** Told about connection errors (the connection recovers by itself); for logging. */
  onError(listener: (error: Error) => void): void {
    this.errorListeners.push(listener);
  }

  reportError(error: Error): void {
    for (const listener of this.errorListeners) listener(error);
  }

  /**
   * A failure of Redis as Unavailable. The message says what happened in the store's terms
   * (unreachable, no answer in time, or Redis's own error reply); the client library's
   * wording (e.g. ioredis's "Reached the max retries per request limit") stays in
   * details.reason and the cause, for the logs.
   */
  unavailable(error: unknown): BridgeError {
    if (error instanceof BridgeError) return error;
    const reason = error instanceof Error ? error.message : String(error);
    const redis = `the session store (Redis at ${this.where})`;
    const what =
      error instanceof Error && error.name === "ReplyError"
        ? `${redis} answered with an error: ${reason.slice(0, 200)}`
        : reason === "Command timed out"
          ? `${redis} did not answer in time`
          : `${redis} is unreachable`;
    return new BridgeError(ErrorType.Unavailable, `${what}; retry in a moment`, {
      details: { store: "redis", reason: reason.slice(0, 200), retriable: "true" },
      cause: error,
    });
  }

  /** Disconnects both clients. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([this.redis.quit(), this.subscriber.quit()]);
    this.redis.disconnect();
    this.subscriber.disconnect();
  }

  private resubscribe(): void {
    if (this.permanent.size === 0) {
      this.subscribed = true;
      return;
    }
    this.subscriber.subscribe(...this.permanent.keys()).then(
      () => {
        this.subscribed = true;
      },
      (error: unknown) => this.reportError(error as Error),
    );
  }

  private subscriberLost(): void {
    this.subscribed = false;
    this.transient.clear();
    for (const listener of this.lostListeners) listener();
  }

  /** A Pub/Sub message. It runs inside ioredis's event handler, where a throw would end the process. */
  private message(channel: Buffer, message: Buffer): void {
    try {
      const name = channel.toString();
      (this.permanent.get(name) ?? this.transient.get(name))?.(message);
    } catch (error) {
      this.reportError(error as Error);
    }
  }
}

/** The name a script is defined under as a command of the client. */
function commandName(script: LuaScript): string {
  return `toolbridge_${script.sha}`;
}

/** The URL without its password, for messages and logs. */
export function redactRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    return parsed.toString();
  } catch {
    return "redis (unparseable URL)";
  }
}
