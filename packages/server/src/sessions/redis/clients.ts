/**
 * The ioredis clients of the store, made for what its URL names (target.ts): one Redis, a
 * Redis Cluster (which follows MOVED and ASK itself and sends each script to its keys'
 * slot), or the master of a Sentinel group (which follows a failover to the promoted replica).
 * Every client fails a command whose connection drops instead of sending it again after a
 * reconnect, where a write could apply twice; the caller gets Unavailable and decides.
 */
import { Cluster, Redis, type RedisOptions } from "ioredis";
import type { RedisTarget } from "./target.js";

export type CommandClient = Redis | Cluster;

/** Longest a command may wait for its answer (or, on a Cluster, for a node to send it to). */
export const COMMAND_TIMEOUT_MS = 10_000;

const reconnect = (attempt: number) => Math.min(50 * attempt, 1000);

/** What every connection to a Redis server of the target gets: credentials, TLS, the caller's options. */
export function serverOptions(target: RedisTarget, extra: RedisOptions = {}): RedisOptions {
  return {
    ...extra,
    ...(target.username === undefined ? {} : { username: target.username }),
    ...(target.password === undefined ? {} : { password: target.password }),
    ...(target.tls ? { tls: extra.tls ?? {} } : {}),
    // A command whose connection drops fails at once (the caller gets Unavailable)
    // instead of being sent again after a reconnect, where a write could apply twice.
    maxRetriesPerRequest: 0,
    retryStrategy: reconnect,
  };
}

/**
 * The client commands and scripts go through (auto-pipelined on one Redis), each with
 * `commandTimeoutMs` to answer.
 */
export function commandClient(
  target: RedisTarget,
  extra: RedisOptions = {},
  commandTimeoutMs: number = COMMAND_TIMEOUT_MS,
): CommandClient {
  if (target.mode === "cluster") {
    return new Cluster(
      target.nodes.map((node) => ({ ...node })),
      {
        redisOptions: { ...serverOptions(target, extra), commandTimeout: commandTimeoutMs },
        // Each command is written to its master's connection as it comes: ioredis's Cluster
        // auto-pipelining (a Pipeline per flush, every key hashed again) halved the commits
        // per second of 64 writers on one session, measured against writing them directly.
        enableAutoPipelining: false,
        scaleReads: "master",
        // A command is sent again only where Redis said it did not run it (MOVED, ASK,
        // TRYAGAIN, CLUSTERDOWN), never after a dropped connection, where it may have.
        retryDelayOnFailover: 0,
        retryDelayOnClusterDown: 100,
        retryDelayOnTryAgain: 100,
        maxRedirections: 16,
        slotsRefreshTimeout: 2000,
        // A master promoted by the cluster is found within this, also when no MOVED says so.
        slotsRefreshInterval: 5000,
        clusterRetryStrategy: reconnect,
      },
    );
  }
  return redisClient(target, extra, { commandTimeout: commandTimeoutMs, enableAutoPipelining: true });
}

/** The Pub/Sub connection on one Redis or a Sentinel group's master (a Cluster's are in cluster-subscriptions.ts). */
export function subscriberClient(target: RedisTarget, extra: RedisOptions = {}): Redis {
  return redisClient(target, extra, { autoResubscribe: false, enableAutoPipelining: false });
}

function redisClient(target: RedisTarget, extra: RedisOptions, own: RedisOptions): Redis {
  const common = { ...serverOptions(target, extra), ...own };
  // ioredis reads host, port, db and TLS from the URL; the options win over it.
  if (target.mode === "single") return new Redis(target.url, common);
  if (target.mode !== "sentinel") throw new Error("a Redis Cluster has no single client");
  return new Redis({
    ...common,
    sentinels: target.sentinels.map((sentinel) => ({ ...sentinel })),
    name: target.group,
    db: target.db,
    role: "master",
    ...(target.sentinelUsername === undefined ? {} : { sentinelUsername: target.sentinelUsername }),
    ...(target.sentinelPassword === undefined ? {} : { sentinelPassword: target.sentinelPassword }),
    ...(target.tls ? { enableTLSForSentinelMode: true, sentinelTLS: extra.tls ?? {} } : {}),
    // Told of a new master by the sentinels' +switch-master, not only when the old one is gone.
    failoverDetector: true,
    sentinelRetryStrategy: reconnect,
    // A write refused by a master turned replica: reconnect, which asks the sentinels for the new one.
    reconnectOnError: (error: Error) => (/^READONLY/.test(error.message) ? 1 : false),
  });
}
