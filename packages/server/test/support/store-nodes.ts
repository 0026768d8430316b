import { after, before } from "node:test";
import { encodeVariableValue } from "@toolbridge/core";
import {
  InMemorySessionStore,
  RedisSessionStore,
  type SessionStore,
  type SessionStoreOptions,
  type VariableChange,
} from "@toolbridge/server";
import { applyDelete, applySet } from "../../src/variables/semantics.js";
import { type RedisCluster, startRedisCluster } from "./redis-cluster.js";
import { type RedisServer, startRedis } from "./redis-server.js";

export interface Nodes {
  readonly a: SessionStore;
  readonly b: SessionStore;
}

export interface Backend {
  readonly name: string;
  open(options?: Partial<SessionStoreOptions>): Promise<Nodes>;
}

export interface RedisNodes {
  readonly a: RedisSessionStore;
  readonly b: RedisSessionStore;
}

const DEFAULTS: SessionStoreOptions = { timeoutMs: 60_000, maxSessions: 100, watchHistory: 100 };

export interface SharedBackend {
  readonly name: string;
  open(options?: Partial<SessionStoreOptions>): Promise<RedisNodes>;
}

/**
 * Both stores, as nodes: the memory store, the Redis store on one redis-server and the Redis
 * store on a Redis Cluster of three masters; the two Redis ones also as RedisNodes
 * (`shared`), for the parts only a shared store has. Starts the redis-server and the cluster
 * before the file's tests and stops them (and every store opened) after them.
 */
export function storeBackends(): { backends: Backend[]; shared: SharedBackend[] } {
  let redis: RedisServer | undefined;
  let cluster: RedisCluster | undefined;
  let prefixes = 0;
  const opened: SessionStore[] = [];
  before(async () => {
    [redis, cluster] = await Promise.all([startRedis(), startRedisCluster()]);
  });
  after(async () => {
    await Promise.all(opened.map((store) => store.close()));
    await Promise.all([redis?.stop(), cluster?.stop()]);
  });
  const opener =
    (url: () => string | undefined) =>
    async (options: Partial<SessionStoreOptions> = {}): Promise<RedisNodes> => {
      const at = url();
      if (at === undefined) throw new Error("Redis is not running");
      const keyPrefix = `contract${++prefixes}:`;
      const [a, b] = [0, 1].map(
        () => new RedisSessionStore({ ...DEFAULTS, ...options, url: at, keyPrefix }),
      ) as [RedisSessionStore, RedisSessionStore];
      opened.push(a, b);
      return { a, b };
    };
  const shared: SharedBackend[] = [
    { name: "Redis store", open: opener(() => redis?.url) },
    { name: "Redis store on a Redis Cluster", open: opener(() => cluster?.url) },
  ];
  const backends: Backend[] = [
    {
      name: "memory store",
      async open(options = {}) {
        const store = new InMemorySessionStore({ ...DEFAULTS, ...options });
        return { a: store, b: store };
      },
    },
    ...shared,
  ];
  return { backends, shared };
}

/** Two call fingerprints (tools/replay.ts callFingerprint): one call, and another. */
export const SAME_CALL = "a1".repeat(32);
export const OTHER_CALL = "b2".repeat(32);

/** The owner of the sessions the tests create. */
export const ALICE = { owner: "alice" };

let ids = 0;
export const newId = () => `contract-${process.pid}-${++ids}`;

export interface WriteOptions {
  expectedVersion?: bigint;
  writer?: string;
  createIfMissing?: boolean;
  maxSessionBytes?: number;
}

/** Sets a variable through `store` with the host's semantics (at most 3 variables per session). */
export function write(
  store: SessionStore,
  sessionId: string,
  name: string,
  value: unknown,
  options: WriteOptions = {},
) {
  const now = Date.now();
  return store.variables.mutate(
    sessionId,
    name,
    (slot) =>
      applySet(slot, {
        sessionId,
        name,
        value: encodeVariableValue(name, value),
        declaration: undefined,
        writer: options.writer ?? "typescript",
        writerLabel: options.writer ?? "typescript",
        tags: {},
        createIfMissing: options.createIfMissing ?? true,
        expectedVersion: options.expectedVersion,
        now,
        maxVariables: 3,
        ...(options.maxSessionBytes === undefined
          ? {}
          : { quotas: { maxSessionBytes: options.maxSessionBytes } }),
      }),
    now,
  );
}

export function remove(store: SessionStore, sessionId: string, name: string, expectedVersion?: bigint) {
  return store.variables.mutate(
    sessionId,
    name,
    (slot) => applyDelete(slot, sessionId, name, expectedVersion),
    Date.now(),
  );
}

export function versionOf(change: VariableChange): bigint {
  return change.result.kind === "set" ? change.result.variable.version : change.result.version;
}
