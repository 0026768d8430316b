/**
 * Makes the session store a host configuration names: "memory", or a Redis URL. An
 * application that needs more (TLS options of its own for Redis, a store of its own) builds
 * its SessionStore itself and passes it as HostOptions.store.
 */
import type { Logger } from "pino";
import type { HostConfig } from "../config.js";
import { InMemorySessionStore } from "./memory/store.js";
import type { SessionStoreOptions } from "./options.js";
import { RedisSessionStore } from "./redis/store.js";
import type { SessionStore } from "./store.js";

/** Logs a store's connection errors at most once per this interval (the store retries by itself). */
const STORE_ERROR_LOG_INTERVAL_MS = 10_000;

/** The store options a host configuration sets: its session, watch, byte and replay settings. */
export function sessionStoreOptions(config: HostConfig): SessionStoreOptions {
  return {
    timeoutMs: config.sessionTimeoutMs,
    maxSessions: config.maxConcurrentSessions,
    watchHistory: config.watchHistory,
    maxSessionBytes: config.maxSessionVariableBytes,
    maxTotalBytes: config.maxTotalVariableBytes,
    callRecords: {
      windowMs: config.replayWindowMs,
      maxRecords: config.replayMaxRecords,
      maxBytes: config.replayMaxSessionBytes,
    },
  };
}

/**
 * The store `config.store` names, configured by `config`: the memory store, or the Redis
 * store at that URL, whose connection errors go to `log` (at most one per 10 s).
 */
export function createSessionStore(config: HostConfig, log: Logger): SessionStore {
  const options = sessionStoreOptions(config);
  if (config.store === "memory") return new InMemorySessionStore(options);
  const store = new RedisSessionStore({
    ...options,
    url: config.store,
    waitReplicas: config.storeWaitReplicas,
    waitTimeoutMs: config.storeWaitTimeoutMs,
  });
  store.onWarning((message) => log.warn({ store: store.description }, message));
  let lastLogged = 0;
  store.onConnectionError((error) => {
    const now = Date.now();
    if (now - lastLogged < STORE_ERROR_LOG_INTERVAL_MS) return;
    lastLogged = now;
    log.warn(
      { err: error, store: store.description },
      "session store (Redis) connection error; calls that need it fail with Unavailable until it is back",
    );
  });
  return store;
}

/** Where a store keeps sessions, for the log: "memory", the Redis URL (without password), or "custom". */
export function describeSessionStore(store: SessionStore): string {
  if (store instanceof RedisSessionStore) return store.description;
  return store instanceof InMemorySessionStore ? "memory" : "custom";
}

/** What kind of store `store` is, as DescribeHost says: "memory", "redis" or "custom". */
export function sessionStoreKind(store: SessionStore): string {
  if (store instanceof RedisSessionStore) return "redis";
  return store instanceof InMemorySessionStore ? "memory" : "custom";
}
