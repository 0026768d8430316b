// Three host processes on a real Redis Cluster of three masters (redis+cluster://), driven by
// the real TypeScript client: sessions spread over the cluster's nodes, a watch on one host
// sees the writes made through the others in commit order, a call repeated under its request
// id on another host runs once, racing versioned writers lose no update, and a host killed
// with SIGKILL loses nothing its clients were told was written. A store URL of the wrong form
// for what it reaches (redis:// at a cluster node, redis+cluster:// at one Redis) stops the
// host at start, with exit code 2 and a message naming the form to use.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { ToolBridgeClient as Client, type ToolBridgeClient, type VariableUpdate } from "@toolbridge/client";
import { type HostProcess, startHost } from "./support/host-process.js";
import { nodeOf } from "./support/nodes.js";
import { incrementRace } from "./support/races.js";
import { type RedisCluster, startRedisCluster } from "./support/redis-cluster.js";
import { startRedis } from "./support/redis-server.js";
import { waitUntil } from "./support/wait.js";

const run = promisify(execFile);

let cluster: RedisCluster;
const hosts: HostProcess[] = [];
const clients: ToolBridgeClient[] = [];

before(async () => {
  cluster = await startRedisCluster();
  hosts.push(...(await Promise.all([0, 1, 2].map(() => startHost({ store: cluster.url })))));
});

after(async () => {
  for (const client of clients) client.close();
  await Promise.all(hosts.map((host) => host.stop("SIGKILL")));
  await cluster?.stop();
});

/** A client of host `index`, in `sessionId` (a new session when empty). */
async function clientOf(index: number, sessionId = ""): Promise<ToolBridgeClient> {
  const client = new Client((hosts[index] as HostProcess).target);
  clients.push(client);
  await client.initializeSession(sessionId);
  return client;
}

async function take(watch: AsyncIterable<VariableUpdate>, count: number): Promise<VariableUpdate[]> {
  const out: VariableUpdate[] = [];
  for await (const update of watch) {
    out.push(update);
    if (out.length >= count) break;
  }
  return out;
}

/** Keys each master holds. */
async function keysPerNode(): Promise<number[]> {
  return Promise.all(
    cluster.ports.map(async (port) =>
      Number((await run("redis-cli", ["-p", String(port), "dbsize"])).stdout),
    ),
  );
}

describe("three hosts on a Redis Cluster", () => {
  it("prints the cluster as its store, and spreads sessions over the cluster's masters", async () => {
    assert.match(
      (hosts[0] as HostProcess).stdout(),
      /toolbridge store: redis\+cluster:\/\/127\.0\.0\.1:\d+,/,
    );
    const opened = await Promise.all(Array.from({ length: 12 }, (_, i) => clientOf(i % 3)));
    await Promise.all(opened.map((client, i) => client.setVariable("owner", i)));
    const perNode = await keysPerNode();
    assert.ok(
      perNode.every((keys) => keys > 0),
      `every master holds sessions' keys: ${perNode.join(", ")}`,
    );
  });

  it("a watcher on one host sees the writes made through the other two in commit order, once each", async () => {
    const a = await clientOf(0);
    const [b, c] = await Promise.all([clientOf(1, a.sessionId), clientOf(2, a.sessionId)]);
    const watch = a.watchVariables(["x", "y"]);
    await watch.ready();
    const writes = async (client: ToolBridgeClient, name: string) => {
      for (let i = 0; i < 20; i++) await client.setVariable(name, i);
    };
    await Promise.all([writes(b, "x"), writes(c, "y")]);
    const seen = await take(watch, 40);
    for (const name of ["x", "y"]) {
      assert.deepEqual(
        seen
          .filter((u) => u.kind === "set" && u.name === name)
          .map((u) => (u.kind === "set" ? u.variable.value : 0)),
        Array.from({ length: 20 }, (_, i) => i),
        name,
      );
    }
    const sequences = seen.map((u) => ("sequence" in u ? u.sequence : 0));
    assert.deepEqual(
      sequences,
      Array.from({ length: 40 }, (_, i) => (sequences[0] ?? 0) + i),
      "consecutive sequences",
    );
  });

  it("a call repeated under its request id through each host runs the tool once", async () => {
    const a = await clientOf(0);
    const [b, c] = await Promise.all([clientOf(1, a.sessionId), clientOf(2, a.sessionId)]);
    const key = randomUUID();
    const requestId = `req-${key}`;
    const results = await Promise.all(
      [a, b, c, a, b, c].map((client) => client.executeTool("bump", { key, ms: 200 }, { requestId })),
    );
    for (const result of results) assert.deepEqual(result, results[0]);
    const counts = await Promise.all([a, b, c].map((client) => client.executeTool("bumps", { key })));
    assert.equal(
      counts.reduce((sum: number, n) => sum + Number(n), 0),
      1,
    );
  });

  it("racing read-modify-write writers through the three hosts lose no update", async () => {
    const a = await clientOf(0);
    const [b, c] = await Promise.all([clientOf(1, a.sessionId), clientOf(2, a.sessionId)]);
    await a.setVariable("counter", 0);
    await incrementRace("counter", [
      [a, 10],
      [b, 10],
      [c, 10],
    ]);
    const counter = await c.getVariable("counter");
    assert.deepEqual([counter.value, counter.version], [30, 31]);
  });

  it("a host killed with SIGKILL under writes loses nothing acknowledged; the others serve on", async () => {
    const victim = await startHost({ store: cluster.url });
    hosts.push(victim);
    const survivor = await clientOf(0);
    const doomed = new Client(victim.target);
    clients.push(doomed);
    await doomed.initializeSession(survivor.sessionId ?? "");
    const acknowledged: string[] = [];
    const writer = (async () => {
      for (let i = 0; ; i++) {
        await doomed.setVariable(`w${i}`, i);
        acknowledged.push(`w${i}`);
      }
    })();
    await waitUntil(() => acknowledged.length >= 20, "the writer got going", { tries: 3000, intervalMs: 10 });
    victim.process.kill("SIGKILL");
    await assert.rejects(writer);
    const listed = new Map((await survivor.listVariables()).map((v) => [v.name, v.value]));
    for (const name of acknowledged) assert.equal(listed.get(name), Number(name.slice(1)), name);
    assert.equal(await survivor.executeTool("add", { a: 2, b: 3 }), 5);
    assert.notEqual(nodeOf(victim), nodeOf(hosts[0] as HostProcess));
  });
});

describe("a store URL of the wrong form for the Redis it reaches", () => {
  it("redis:// at a node of a cluster: the host refuses to start and names redis+cluster://", async () => {
    await assert.rejects(
      startHost({ store: cluster.nodeUrl(1) }),
      (error: Error) =>
        /exited with 2/.test(error.message) &&
        /is a node of a Redis Cluster \(cluster_enabled:1\): use redis\+cluster:\/\/127\.0\.0\.1:\d+/.test(
          error.message,
        ),
    );
  });

  it("redis+cluster:// at one Redis: the host refuses to start and names redis://", async () => {
    const single = await startRedis();
    try {
      await assert.rejects(
        startHost({ store: `redis+cluster://127.0.0.1:${single.port}` }),
        (error: Error) =>
          /exited with 2/.test(error.message) &&
          /is not a Redis Cluster \(cluster support disabled\): use redis:\/\/host:port\/db/.test(
            error.message,
          ),
      );
    } finally {
      await single.stop();
    }
  });
});
