/**
 * Hosts for the tests of session variables through the in-process API (host.variables(id)),
 * on both stores: the memory store and the Redis store on a real redis-server. A file calls
 * `variableBackends()` at its top level; the redis-server starts before its tests, and every
 * host made is stopped after them.
 */
import { after, before } from "node:test";
import {
  type HostOptions,
  type SessionVariables,
  ToolBridgeHost,
  type VariableUpdate,
} from "@toolbridge/server";
import { pino } from "pino";
import { type RedisServer, startRedis } from "./redis-server.js";

export interface VariableBackend {
  readonly name: string;
  /** A host on this store (not started), stopped after the file's tests. */
  newHost(options?: HostOptions): ToolBridgeHost;
  /** A new host with one session, and that session's variables. */
  session(options?: HostOptions): Promise<{ host: ToolBridgeHost; id: string; vars: SessionVariables }>;
}

const quiet = pino({ level: "silent" });

export function variableBackends(): VariableBackend[] {
  let redis: RedisServer | undefined;
  const hosts: ToolBridgeHost[] = [];
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await Promise.all(hosts.map((host) => host.stop({ graceMs: 100 })));
    await redis?.stop();
  });
  const backend = (name: string, store: () => string): VariableBackend => {
    const newHost = (options: HostOptions = {}) => {
      const host = new ToolBridgeHost({ logger: quiet, store: store(), ...options });
      hosts.push(host);
      return host;
    };
    return {
      name,
      newHost,
      async session(options = {}) {
        const host = newHost(options);
        const { id } = await host.createSession();
        return { host, id, vars: host.variables(id) };
      },
    };
  };
  return [
    backend("memory store", () => "memory"),
    backend("Redis store", () => redis?.url ?? "redis://redis-not-started"),
  ];
}

/** Collects a watch's updates until `count` arrived or the watch ended. */
export async function collect(
  iterable: AsyncIterable<VariableUpdate>,
  count: number,
): Promise<VariableUpdate[]> {
  const out: VariableUpdate[] = [];
  for await (const update of iterable) {
    out.push(update);
    if (out.length >= count) break;
  }
  return out;
}
