/**
 * The host's Python workers as part of its start: the private directory their sockets (and
 * the host's own socket) live in, their start, their tools registered, their health reported.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { makePrivateDir, removeStaleDirs } from "../private-dir.js";
import type { HostHealth } from "../rpc/health-status.js";
import { hostToolsFor } from "../workers/host-tools.js";
import type { WorkerPool } from "../workers/pool.js";
import type { HostParts } from "./compose.js";
import { WORKERS_HEALTH_SERVICE } from "./options.js";

/** The host's private directory, when it needs one, and the socket of its own clients there. */
export interface PrivateDir {
  /** Where the host's own clients dial it (bound once it listens); undefined without a private directory. */
  readonly socket: string | undefined;
  /** Removes the directory (and what is left in it); idempotent. */
  remove(): void;
}

const NONE: PrivateDir = { socket: undefined, remove: () => {} };

/**
 * Removes the private directories of hosts that are gone (killed before they could), then
 * makes this host's when it needs one: for its own clients' socket on a host serving TLS,
 * and for its workers, whose sockets go there and who dial that socket, fixed at their
 * start. Then starts the workers and registers their tools as global tools. On failure the
 * directory is removed again and the workers stopped.
 */
export async function prepareWorkers(parts: HostParts, tls: boolean): Promise<PrivateDir> {
  const { workers, log } = parts;
  const removed = await removeStaleDirs();
  if (removed.length > 0) log.info({ removed }, "removed the private directories of hosts that are gone");
  if (!tls && workers.size === 0) return NONE;
  const path = makePrivateDir("toolbridge-host");
  const dir: PrivateDir = {
    socket: join(path, "host.sock"),
    remove: () => rmSync(path, { recursive: true, force: true }),
  };
  try {
    if (workers.size > 0) {
      workers.attachToHost(path, `unix:${dir.socket}`);
      await startWorkers(parts);
    }
    return dir;
  } catch (error) {
    dir.remove();
    throw error;
  }
}

/** Starts the worker pool and registers its tools for every session. */
async function startWorkers({ workers, health, registry, config }: HostParts): Promise<void> {
  reportPoolHealth(workers, health);
  const { tools } = await workers.start();
  try {
    for (const tool of hostToolsFor(workers, tools, { sessionAffinity: config.workerSessionAffinity })) {
      registry.register(tool, { replace: false });
    }
  } catch (error) {
    await workers.stop({ graceMs: 0 });
    throw error;
  }
}

/** Health of the worker pool under WORKERS_HEALTH_SERVICE: SERVING while at least one worker is ready. */
function reportPoolHealth(pool: WorkerPool, health: HostHealth): void {
  const update = () => health.set(WORKERS_HEALTH_SERVICE, pool.readyCount > 0);
  pool.onChange(update);
  update();
}
