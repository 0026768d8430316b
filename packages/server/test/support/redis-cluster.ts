/**
 * A real Redis Cluster of three masters (Debian's redis-server with --cluster-enabled yes,
 * joined by `redis-cli --cluster create`) on free loopback ports, for the tests of the store
 * on a cluster. One cluster per test file: it takes about two seconds to form.
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort, killProcess, launchRedis } from "./redis-server.js";

const run = promisify(execFile);

export interface RedisCluster {
  readonly ports: readonly number[];
  /** redis+cluster://127.0.0.1:<port>,... naming every node. */
  readonly url: string;
  /** redis://127.0.0.1:<port>/0 of one node: the URL of the wrong form for a cluster. */
  nodeUrl(index: number): string;
  /** Kills every node and removes their directories. */
  stop(): Promise<void>;
}

export async function startRedisCluster(masters = 3): Promise<RedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), "toolbridge-cluster-"));
  const ports: number[] = [];
  const children = await Promise.all(
    Array.from({ length: masters }, async (_, index) => {
      const [port, bus] = [await freePort(), await freePort()];
      ports[index] = port;
      const home = join(dir, String(port));
      mkdirSync(home);
      return launchRedis(port, [
        ...["--port", String(port), "--bind", "127.0.0.1", "--dir", home, "--save", "", "--appendonly", "no"],
        ...["--cluster-enabled", "yes", "--cluster-port", String(bus), "--cluster-config-file", "nodes.conf"],
        ...["--cluster-node-timeout", "2000", "--loglevel", "warning"],
      ]);
    }),
  );
  const stop = async () => {
    await Promise.all(children.map((child) => killProcess(child)));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const nodes = ports.map((port) => `127.0.0.1:${port}`);
    await run("redis-cli", ["--cluster", "create", ...nodes, "--cluster-yes"], { timeout: 20_000 });
    await everyNodeOk(ports);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    ports,
    url: `redis+cluster://${ports.map((port) => `127.0.0.1:${port}`).join(",")}`,
    nodeUrl: (index) => `redis://127.0.0.1:${ports[index]}/0`,
    stop,
  };
}

/** Waits (at most 10 s) until every node says cluster_state:ok. */
async function everyNodeOk(ports: readonly number[]): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const states = await Promise.all(
      ports.map(async (port) => (await run("redis-cli", ["-p", String(port), "cluster", "info"])).stdout),
    );
    if (states.every((state) => state.includes("cluster_state:ok"))) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error("the Redis Cluster did not reach cluster_state:ok within 10 s");
}
