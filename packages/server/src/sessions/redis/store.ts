/**
 * The Redis session store: sessions, variables and their change logs, call records, rate
 * slots and the node and session tool directories live in Redis, so several host nodes
 * serve one set of sessions and a restarted host finds them again. Each part is in its own
 * file beside this one; they reach Redis through one RedisConnection (connection.ts).
 * docs/stores.md describes the keys, the commit protocol, the watch design and their limits.
 */
import { callRecordLimits } from "../call-records.js";
import { DEFAULT_MAX_SESSION_BYTES, DEFAULT_WATCH_HISTORY, type SessionStoreOptions } from "../options.js";
import type { SessionStore } from "../store.js";
import { RedisCallRecordStore } from "./call-records.js";
import { RedisConnection, type RedisConnectionOptions } from "./connection.js";
import { RedisNodeDirectory } from "./node-directory.js";
import { RedisRateSlots } from "./rate-slots.js";
import { RedisSessionTable } from "./session-table.js";
import { RedisSessionToolDirectory } from "./session-tools.js";
import { RedisVariableStore } from "./variable-store.js";

export interface RedisSessionStoreOptions extends SessionStoreOptions, RedisConnectionOptions {
  /**
   * How long this node trusts that a session it refreshed is alive before refreshing it
   * again (the TTL in Redis is timeoutMs plus this). Default: a tenth of timeoutMs, at most 1 s.
   */
  readonly leaseMs?: number;
}

/**
 * A SessionStore in Redis, shared by every host node that uses the same Redis (and key
 * prefix), with every part: the shared ones included. Nodes must be given the same
 * timeoutMs, maxSessions, watchHistory, maxSessionBytes and callRecords. A Redis failure
 * surfaces as BridgeError(Unavailable) naming Redis; the store reconnects by itself and
 * continues when Redis is back.
 */
export class RedisSessionStore implements SessionStore {
  readonly sessions: RedisSessionTable;
  readonly variables: RedisVariableStore;
  readonly callRecords: RedisCallRecordStore;
  readonly rateSlots: RedisRateSlots;
  readonly nodes: RedisNodeDirectory;
  readonly sessionTools: RedisSessionToolDirectory;
  private readonly connection: RedisConnection;

  constructor(options: RedisSessionStoreOptions) {
    const connection = new RedisConnection(options);
    this.connection = connection;
    this.sessions = new RedisSessionTable(connection, {
      timeoutMs: options.timeoutMs,
      maxSessions: options.maxSessions,
      leaseMs: options.leaseMs ?? Math.max(1, Math.min(1000, Math.floor(options.timeoutMs / 10))),
    });
    this.variables = new RedisVariableStore(connection, {
      history: Math.max(1, options.watchHistory ?? DEFAULT_WATCH_HISTORY),
      maxSessionBytes: options.maxSessionBytes ?? DEFAULT_MAX_SESSION_BYTES,
    });
    // The first listener of every end, so that what this node cached of the session is gone
    // before the host's listeners run.
    this.sessions.onSessionEnded((event) => this.variables.sessionEnded(event.id));
    this.callRecords = new RedisCallRecordStore(connection, callRecordLimits(options.callRecords));
    this.rateSlots = new RedisRateSlots(connection);
    this.nodes = new RedisNodeDirectory(connection);
    this.sessionTools = new RedisSessionToolDirectory(connection);
  }

  /** Where the store is, for messages: the URL without password. */
  get description(): string {
    return this.connection.where;
  }

  /** Told about connection errors (the store recovers by itself); for logging. */
  onConnectionError(listener: (error: Error) => void): void {
    this.connection.onError(listener);
  }

  /** Told what the start-up check found worth a warning (e.g. fewer replicas than waitReplicas); for logging. */
  onWarning(listener: (message: string) => void): void {
    this.connection.onWarning(listener);
  }

  /**
   * Waits for Redis (a few seconds at most) and checks that the URL reaches what it says:
   * throws BridgeError(ValidationError) naming what to change for a Redis Cluster node behind
   * redis://, a non-cluster Redis behind redis+cluster://, a replica, a refused password or
   * sentinels that know no such master group. An unreachable Redis is no reason to throw.
   */
  verify(): Promise<void> {
    return this.connection.verify();
  }

  /** Disconnects; the sessions stay in Redis for the other nodes and the next start. */
  async close(): Promise<void> {
    this.nodes.stop();
    this.variables.close();
    this.sessions.clear();
    await this.connection.close();
  }
}
