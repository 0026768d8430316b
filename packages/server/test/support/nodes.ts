/**
 * Host processes on one redis-server, for the tests of several nodes: a file calls
 * `nodesOnRedis()` at its top level; the redis-server starts before its tests, and the
 * hosts (SIGKILLed) and clients it made are gone after them.
 */
import assert from "node:assert/strict";
import { after, before } from "node:test";
import { type ClientOptions, ToolBridgeClient } from "@toolbridge/client";
import { type HostProcess, startHost } from "./host-process.js";
import { type RedisServer, startRedis } from "./redis-server.js";

export interface NodesOnRedis {
  /** The redis-server's URL (once the tests run). */
  readonly url: () => string;
  /** A host process with these flags (add `store: url()` for a node of the cluster). */
  host(flags?: Record<string, string | number>): Promise<HostProcess>;
  /** A client of `target`, closed after the tests. */
  client(target: string, options?: ClientOptions): ToolBridgeClient;
}

export function nodesOnRedis(): NodesOnRedis {
  let redis: RedisServer | undefined;
  const running: HostProcess[] = [];
  const clients: ToolBridgeClient[] = [];
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    for (const client of clients) client.close();
    await Promise.all(running.map((h) => h.stop("SIGKILL")));
    await redis?.stop();
  });
  return {
    url: () => redis?.url ?? assert.fail("redis-server is not running"),
    async host(flags = {}) {
      const started = await startHost(flags);
      running.push(started);
      return started;
    },
    client(target, options = {}) {
      const made = new ToolBridgeClient(target, options);
      clients.push(made);
      return made;
    },
  };
}

/** The node name a host prints at start with a shared store (`toolbridge node: <name>`). */
export function nodeOf(host: HostProcess): string {
  const match = /toolbridge node: (\S+)/.exec(host.stdout());
  assert.ok(match?.[1], `no node line in:\n${host.stdout()}`);
  return match[1];
}
