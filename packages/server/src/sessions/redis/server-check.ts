/**
 * The store's start-up check (RedisConnection.verify): waits for the first connection to
 * Redis, and reads what the Redis reached says about itself (INFO), so that a URL of the
 * wrong form, a replica where the master belongs or a refused password stops the host at
 * start with a message naming what to change, instead of failing every call later.
 */
import type { EventEmitter } from "node:events";
import type { Cluster, Redis } from "ioredis";
import type { CommandClient } from "./clients.js";
import { type Classified, classify, type FaultContext, isConfigurationFault } from "./faults.js";
import { clusterUrl, type RedisMode, URL_FORMS } from "./target.js";

/** How long a starting host waits for Redis before it starts anyway (Redis may come later). */
export const STARTUP_WAIT_MS = 5000;

export type FirstConnection =
  | { readonly state: "ready" }
  | { readonly state: "refused"; readonly fault: Classified }
  | { readonly state: "unreachable"; readonly error: Error | undefined };

/**
 * Resolves when `client` is ready, when it or a sentinel reports an error that says the
 * configuration is wrong, or after `waitMs` (unreachable, with the last error seen).
 */
export function firstConnection(
  client: EventEmitter & { status: string },
  context: FaultContext,
  waitMs: number = STARTUP_WAIT_MS,
): Promise<FirstConnection> {
  if (client.status === "ready") return Promise.resolve({ state: "ready" });
  return new Promise((resolve) => {
    let last: Error | undefined;
    let sentinelFault: Classified | undefined;
    const done = (outcome: FirstConnection) => {
      clearTimeout(timer);
      client.off("ready", onReady);
      client.off("error", onError);
      client.off("sentinelError", onSentinelError);
      resolve(outcome);
    };
    const onReady = () => done({ state: "ready" });
    const onError = (error: Error) => {
      last = error;
      const fault = classify(error, context);
      if (isConfigurationFault(fault.fault)) done({ state: "refused", fault });
      // A round over every sentinel without a master: a sentinel said why.
      else if (sentinelFault !== undefined && /All sentinels are unreachable/.test(error.message))
        done({ state: "refused", fault: sentinelFault });
    };
    const onSentinelError = (error: Error) => {
      const fault = classify(error, context);
      if (isConfigurationFault(fault.fault)) sentinelFault = fault;
    };
    const timer = setTimeout(() => done({ state: "unreachable", error: last }), waitMs);
    client.on("ready", onReady);
    client.on("error", onError);
    client.on("sentinelError", onSentinelError);
  });
}

/** A field of an INFO reply. */
export function infoField(info: string, name: string): string | undefined {
  return new RegExp(`^${name}:(.*)$`, "m").exec(info)?.[1]?.trim();
}

/** What INFO of the Redis the store reached says is wrong with the URL, if anything. */
export function checkInfo(info: string, mode: RedisMode, where: string): Classified | undefined {
  const version = infoField(info, "redis_version") ?? "";
  const [major = 0, minor = 0] = version.split(".").map(Number);
  const needed = mode === "cluster" ? [7, 0] : [6, 2];
  if (version !== "" && (major < (needed[0] ?? 0) || (major === needed[0] && minor < (needed[1] ?? 0)))) {
    return {
      fault: "unsupported",
      what: `is Redis ${version}`,
      advice: `use Redis ${needed.join(".")} or later${mode === "cluster" ? " (sharded Pub/Sub)" : ""}`,
    };
  }
  if (mode !== "cluster" && infoField(info, "cluster_enabled") === "1") {
    return {
      fault: "cluster_node",
      what: "is a node of a Redis Cluster (cluster_enabled:1)",
      advice: `use ${clusterUrl(where)} (naming more of its nodes after commas) to reach the cluster`,
    };
  }
  if (mode === "single" && infoField(info, "role") === "slave") {
    const master = `${infoField(info, "master_host") ?? "?"}:${infoField(info, "master_port") ?? "?"}`;
    return {
      fault: "read_only_replica",
      what: `is a read-only replica (of ${master})`,
      advice: `point the store at the master, or use ${URL_FORMS.sentinel} to follow failovers`,
    };
  }
  return undefined;
}

/**
 * What the Redis `client` reached says is wrong with the URL: its INFO (which an ACL may
 * forbid: then the rest decides), and whether it runs a script. `connectionFault` is the
 * connection's last error, for a failure that only says the connection closed.
 */
export async function checkServer(
  client: CommandClient,
  context: FaultContext,
  connectionFault: Error | undefined,
): Promise<Classified | undefined> {
  const node = context.mode === "cluster" ? (client as Cluster).nodes("master")[0] : (client as Redis);
  if (node === undefined) return undefined;
  let info = "";
  try {
    info = await node.info();
  } catch (error) {
    const fault = classify(error, context, connectionFault);
    if (isConfigurationFault(fault.fault) && fault.fault !== "permission") return fault;
  }
  const fault = checkInfo(info, context.mode, context.where);
  if (fault !== undefined) return fault;
  try {
    // Every write is a script: a Redis that refuses them cannot hold the store.
    await node.eval("return 1", 0);
  } catch (error) {
    const refused = classify(error, context, connectionFault);
    if (isConfigurationFault(refused.fault)) return refused;
  }
  return undefined;
}

/** The fewest replicas a master of the store has (undefined when INFO cannot tell). */
export async function fewestReplicas(client: CommandClient, mode: RedisMode): Promise<number | undefined> {
  if (mode === "cluster") {
    const owners = (client as Cluster).slots.filter((nodes) => nodes !== undefined);
    return owners.length === 0 ? undefined : Math.min(...owners.map((nodes) => nodes.length - 1));
  }
  const info = await (client as Redis).info("replication").catch(() => "");
  const replicas = infoField(info, "connected_slaves");
  return replicas === undefined ? undefined : Number(replicas);
}
