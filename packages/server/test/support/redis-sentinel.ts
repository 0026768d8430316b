/**
 * A real Sentinel group on free loopback ports, for the failover tests of the store: one
 * master, `replicas` replicas (redis-server --replicaof) and three redis-sentinel processes
 * watching the master group "toolbridge" with a quorum of two and down-after-milliseconds
 * 1000, optionally with a password on the Redis servers and one on the sentinels.
 */
import { type ChildProcess, execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort, killProcess, launchRedis } from "./redis-server.js";
import { waitUntil } from "./wait.js";

const run = promisify(execFile);

export const GROUP = "toolbridge";

export interface SentinelGroupOptions {
  readonly replicas: number;
  /** requirepass (and masterauth) of the Redis servers. */
  readonly password?: string;
  /** requirepass of the sentinels. */
  readonly sentinelPassword?: string;
}

export interface SentinelGroup {
  /** redis+sentinel://[:password@]127.0.0.1:<sentinel>,.../toolbridge[?sentinelPassword=...] */
  readonly url: string;
  readonly sentinelPorts: readonly number[];
  readonly masterPort: number;
  readonly replicaPorts: readonly number[];
  /** The port of the master as the first sentinel names it now. */
  currentMaster(): Promise<number>;
  /** Kills the Redis server on `port` with SIGKILL. */
  kill(port: number): Promise<void>;
  /** Sends `signal` (SIGSTOP, SIGCONT) to the Redis server on `port`. */
  signal(port: number, signal: NodeJS.Signals): void;
  /** Closes the master's replication links (the replicas reconnect by themselves, unless stopped). */
  cutReplicas(): Promise<void>;
  /** Kills every process and removes their directory. */
  stop(): Promise<void>;
}

export async function startSentinelGroup(options: SentinelGroupOptions): Promise<SentinelGroup> {
  const dir = mkdtempSync(join(tmpdir(), "toolbridge-sentinel-"));
  const processes = new Map<number, ChildProcess>();
  const stop = async () => {
    await Promise.all([...processes.values()].map((child) => killProcess(child)));
    rmSync(dir, { recursive: true, force: true });
  };
  const auth =
    options.password === undefined
      ? []
      : ["--requirepass", options.password, "--masterauth", options.password];
  const server = async (port: number, extra: string[] = []) => {
    const args = [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--dir",
      dir,
      "--save",
      "",
      "--appendonly",
      "no",
    ];
    // A replica syncs at once (by default the master waits 5 s for more of them).
    const sync = ["--repl-diskless-sync-delay", "0"];
    processes.set(
      port,
      await launchRedis(port, [...args, "--loglevel", "warning", ...sync, ...auth, ...extra]),
    );
  };
  try {
    const masterPort = await freePort();
    await server(masterPort);
    const replicaPorts = await Promise.all(Array.from({ length: options.replicas }, () => freePort()));
    await Promise.all(
      replicaPorts.map((port) => server(port, ["--replicaof", "127.0.0.1", String(masterPort)])),
    );
    const sentinelPorts = await Promise.all([0, 1, 2].map(() => freePort()));
    await Promise.all(
      sentinelPorts.map(async (port) => {
        const config = join(dir, `sentinel-${port}.conf`);
        writeFileSync(config, sentinelConfig(port, masterPort, options));
        processes.set(port, await launchRedis(port, [config], "redis-sentinel"));
      }),
    );
    const group = { sentinelPorts, options };
    // Ready for a failover once the replicas are in sync and the sentinels know each other.
    await whenReady(async () => {
      const states = await Promise.all(sentinelPorts.map((port) => masterState(group, port)));
      return states.every(
        (state) => state["num-other-sentinels"] === "2" && state["num-slaves"] === String(options.replicas),
      );
    }, "the sentinels know each other and the replicas");
    await whenReady(
      async () =>
        (await cli(masterPort, options.password, "info", "replication")).split("state=online").length - 1 ===
        options.replicas,
      "the replicas are in sync",
    );
    const credentials = options.password === undefined ? "" : `:${encodeURIComponent(options.password)}@`;
    const query =
      options.sentinelPassword === undefined
        ? ""
        : `?sentinelPassword=${encodeURIComponent(options.sentinelPassword)}`;
    return {
      url: `redis+sentinel://${credentials}${sentinelPorts.map((port) => `127.0.0.1:${port}`).join(",")}/${GROUP}${query}`,
      sentinelPorts,
      masterPort,
      replicaPorts,
      async currentMaster() {
        const [, port] = (
          await cli(
            sentinelPorts[0] as number,
            options.sentinelPassword,
            "sentinel",
            "get-master-addr-by-name",
            GROUP,
          )
        )
          .trim()
          .split("\n");
        return Number(port);
      },
      kill: (port) => killProcess(processes.get(port)),
      signal: (port, signal) => processes.get(port)?.kill(signal),
      async cutReplicas() {
        await cli(masterPort, options.password, "client", "kill", "type", "replica");
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

function sentinelConfig(port: number, masterPort: number, options: SentinelGroupOptions): string {
  return [
    `port ${port}`,
    "bind 127.0.0.1",
    "loglevel warning",
    `sentinel monitor ${GROUP} 127.0.0.1 ${masterPort} 2`,
    `sentinel down-after-milliseconds ${GROUP} 1000`,
    `sentinel failover-timeout ${GROUP} 5000`,
    `sentinel parallel-syncs ${GROUP} 2`,
    ...(options.password === undefined ? [] : [`sentinel auth-pass ${GROUP} ${options.password}`]),
    ...(options.sentinelPassword === undefined ? [] : [`requirepass ${options.sentinelPassword}`]),
    "",
  ].join("\n");
}

async function cli(port: number, password: string | undefined, ...command: string[]): Promise<string> {
  const auth = password === undefined ? [] : ["--no-auth-warning", "-a", password];
  return (await run("redis-cli", ["-p", String(port), ...auth, ...command], { timeout: 5000 })).stdout;
}

/** `SENTINEL MASTER <group>` of one sentinel, as fields. */
async function masterState(
  group: { sentinelPorts: readonly number[]; options: SentinelGroupOptions },
  port: number,
): Promise<Record<string, string>> {
  const lines = (await cli(port, group.options.sentinelPassword, "sentinel", "master", GROUP))
    .trim()
    .split("\n");
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < lines.length; i += 2) fields[lines[i] as string] = lines[i + 1] as string;
  return fields;
}

/** Waits for the group to get ready; a check that throws (a sentinel still starting) counts as not yet. */
function whenReady(check: () => Promise<boolean>, what: string): Promise<void> {
  return waitUntil(() => check().catch(() => false), `the Sentinel group gets ready: ${what}`, {
    tries: 150,
    intervalMs: 100,
  });
}
