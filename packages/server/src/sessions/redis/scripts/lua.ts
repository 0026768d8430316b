/**
 * What every Lua script of the Redis store is made of: its text, its SHA-1 (the name
 * Redis caches it under) and how many of its arguments are keys. The scripts themselves are
 * in the files beside this one, one per part of the store; redis/keys.ts describes the keys
 * they take, and redis/connection.ts runs them.
 *
 * Each script touches the keys of one session only (they share the hash tag {<session id>},
 * so they live in one Cluster slot), or the global session index only, or one key of its
 * own, and Redis runs a script atomically: that is what makes a read-check-write a single
 * commit.
 */
import { createHash } from "node:crypto";

export interface LuaScript {
  readonly lua: string;
  readonly sha: string;
  readonly keys: number;
  /**
   * The script makes a write that must not be lost in a failover: with the wait setting
   * (storeWaitReplicas) it is acknowledged only once replicas have it (durable-writes.ts).
   */
  readonly durable: boolean;
}

/** An argument of a script or command. */
export type ScriptArgument = string | Buffer | number;

export function script(keys: number, lua: string, options: { durable?: boolean } = {}): LuaScript {
  return { lua, keys, sha: createHash("sha1").update(lua).digest("hex"), durable: options.durable ?? false };
}

/** The number of keys of a session, in the order of RedisKeys.session (redis/keys.ts). */
export const SESSION_KEYS = 9;

/** Gives keys 2.. of a script the TTL of the session's meta key (they may have been created just now). */
export const SAME_TTL = `
local ttl = redis.call('PTTL', KEYS[1])
for i = 2, #KEYS do redis.call('PEXPIRE', KEYS[i], ttl) end`;
