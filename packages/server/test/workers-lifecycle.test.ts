// The pool's life cycle under real faults: graceful stop, SIGKILL of the host, SIGKILL and
// SIGSTOP of a worker, recycling. Orphans are looked for in the process table (/proc): no
// worker, and no process a worker's tool started (its process group), may outlive its pool.
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ToolBridgeClient } from "@toolbridge/client";
import { BridgeError, WorkerPool } from "@toolbridge/server";
import { startHost } from "./support/host-process.js";
import { waitUntil } from "./support/wait.js";
import { childrenOf, POOL_TOOLS, PYTHON, poolOptions, survivors } from "./support/workers.js";

/** The private directories process `pid` made in the temporary directory (their names carry it). */
function privateDirsOf(pid: number): string[] {
  return readdirSync(tmpdir())
    .filter(
      (name) => name.startsWith(`toolbridge-host-${pid}-`) || name.startsWith(`toolbridge-workers-${pid}-`),
    )
    .map((name) => join(tmpdir(), name));
}

function pidsOf(pool: WorkerPool): number[] {
  return pool.state().workers.map((worker) => worker.pid);
}

/** A `sleep` process started by each worker's tool, so the test can check process groups die too. */
async function grandchildren(pool: WorkerPool): Promise<number[]> {
  const pids: number[] = [];
  for (const worker of pool.state().workers) {
    pids.push((await pool.call("spawn_child", {}, { affinity: worker.name })) as number);
  }
  return pids;
}

describe("worker pool life cycle", () => {
  it("starts workers in parallel and leaves no process behind after a graceful stop", async () => {
    const pool = new WorkerPool(poolOptions({ size: 3, startConcurrency: 2 }));
    const started = await pool.start();
    assert.equal(pool.state().idle, 3);
    assert.ok(started.tools.some((tool) => tool.name === "echo"));
    const workers = pidsOf(pool);
    assert.equal(new Set(workers).size, 3);
    for (const pid of workers) assert.equal(childrenOf(process.pid).includes(pid), true);
    const spawned = await grandchildren(pool);
    assert.equal(survivors(spawned).length, spawned.length);
    await pool.stop();
    assert.deepEqual(survivors([...workers, ...spawned]), []);
    assert.equal(pool.state().workers.length, 0);
    await assert.rejects(
      pool.call("echo", { value: 1 }),
      (e: unknown) => e instanceof BridgeError && e.type === "Unavailable",
    );
  });

  it("workers exit by themselves when the host is killed with SIGKILL, and remove its directory", async () => {
    const host = await startHost(
      {
        workers: 2,
        "worker-module": POOL_TOOLS,
        "worker-python": PYTHON,
        "worker-preload-agents": "false",
        "worker-heartbeat-ms": 200,
      },
      [],
    );
    const workers = childrenOf(host.process.pid as number);
    assert.equal(workers.length, 2);
    // The host's private directory: its own socket, which its workers dial, and theirs.
    const [directory, ...others] = privateDirsOf(host.process.pid as number);
    assert.ok(directory !== undefined && others.length === 0, String(others));
    assert.deepEqual(readdirSync(directory).sort(), ["host.sock", "w1.sock", "w2.sock"]);
    const client = new ToolBridgeClient(host.target);
    await client.initializeSession();
    const spawned: number[] = [];
    for (let i = 0; i < 4; i++) spawned.push((await client.executeTool("spawn_child", {})) as number);
    client.close();
    assert.equal(survivors([...workers, ...spawned]).length, 6);
    await host.stop("SIGKILL");
    await waitUntil(
      () => survivors([...workers, ...spawned]).length === 0,
      "workers and their children are gone after SIGKILL of the host",
      {
        tries: 600,
        intervalMs: 50,
        explain: () => `${JSON.stringify(survivors([...workers, ...spawned]))}\n${host.stderr()}`,
      },
    );
    await waitUntil(() => !existsSync(directory), `the host's directory ${directory} is removed`, {
      tries: 200,
      intervalMs: 50,
    });
  });

  it("stops its workers when the host stops gracefully (SIGTERM), and removes its directory", async () => {
    const host = await startHost(
      { workers: 2, "worker-module": POOL_TOOLS, "worker-python": PYTHON, "worker-preload-agents": "false" },
      [],
    );
    const workers = childrenOf(host.process.pid as number);
    assert.equal(workers.length, 2);
    assert.equal(privateDirsOf(host.process.pid as number).length, 1);
    assert.equal(await host.stop("SIGTERM"), 0);
    assert.deepEqual(survivors(workers), []);
    assert.deepEqual(privateDirsOf(host.process.pid as number), []);
  });

  it("replaces a worker killed with SIGKILL under load: its calls fail retriably, the pool heals", async () => {
    const pool = new WorkerPool(poolOptions({ size: 2 }));
    await pool.start();
    try {
      const [victim, other] = pool.state().workers;
      assert.ok(victim !== undefined && other !== undefined);
      const spawned = (await pool.call("spawn_child", {}, { affinity: victim.name })) as number;
      const onVictim = Array.from({ length: 10 }, (_, i) =>
        pool.call("sleep", { ms: 30_000, marker: `v${i}` }, { affinity: victim.name }),
      );
      const onOther = Array.from({ length: 10 }, (_, i) =>
        pool.call("sleep", { ms: 300, marker: `o${i}` }, { affinity: other.name }),
      );
      await waitUntil(() => pool.state().workers.every((w) => w.load === 10), "the calls are in flight", {
        tries: 600,
        intervalMs: 50,
      });
      process.kill(victim.pid, "SIGKILL");
      const failed = await Promise.allSettled(onVictim);
      for (const result of failed) {
        assert.equal(result.status, "rejected");
        const error = (result as PromiseRejectedResult).reason;
        assert.ok(error instanceof BridgeError, String(error));
        assert.equal(error.type, "Unavailable");
        assert.equal(error.details.retriable, "true");
        assert.equal(error.details.pid, String(victim.pid));
      }
      assert.deepEqual(await Promise.all(onOther), Array(10).fill("slept"));
      await pool.waitForReady(2);
      const healed = pool.state();
      assert.equal(healed.restarts, 1);
      assert.ok(!pidsOf(pool).includes(victim.pid));
      assert.deepEqual(survivors([victim.pid, spawned]), []);
      const after = await Promise.all(Array.from({ length: 20 }, (_, i) => pool.call("add", { a: i, b: 1 })));
      assert.deepEqual(
        after,
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
      const metrics = await pool.metricsRegistry.metrics();
      assert.match(metrics, /toolbridge_worker_restarts_total\{reason="exited"\} 1/);
    } finally {
      const last = pidsOf(pool);
      await pool.stop();
      assert.deepEqual(survivors(last), []);
    }
  });

  it("replaces a hung worker (SIGSTOP): it answers no heartbeat, its calls fail retriably", async () => {
    const pool = new WorkerPool(poolOptions({ size: 2, heartbeatIntervalMs: 100, heartbeatTimeoutMs: 1000 }));
    await pool.start();
    try {
      const [victim] = pool.state().workers;
      assert.ok(victim !== undefined);
      const stuck = pool.call("sleep", { ms: 30_000 }, { affinity: victim.name });
      await waitUntil(() => pool.state().workers.some((w) => w.load === 1), "the call is in flight", {
        tries: 600,
        intervalMs: 50,
      });
      process.kill(victim.pid, "SIGSTOP");
      await assert.rejects(
        stuck,
        (e: unknown) =>
          e instanceof BridgeError && e.type === "Unavailable" && e.details.reason === "worker_unresponsive",
      );
      await pool.waitForReady(2);
      assert.ok(!pidsOf(pool).includes(victim.pid));
      await waitUntil(() => survivors([victim.pid]).length === 0, "the stopped worker is killed", {
        tries: 600,
        intervalMs: 50,
      });
      assert.match(
        await pool.metricsRegistry.metrics(),
        /toolbridge_worker_restarts_total\{reason="unresponsive"\} 1/,
      );
      assert.equal(await pool.call("add", { a: 1, b: 2 }), 3);
    } finally {
      const last = pidsOf(pool);
      await pool.stop();
      assert.deepEqual(survivors(last), []);
    }
  });

  it("recycles a worker after N requests without failing a call", async () => {
    const pool = new WorkerPool(poolOptions({ size: 1, maxRequests: 5 }));
    await pool.start();
    const seen: number[] = [];
    try {
      for (let i = 0; i < 16; i++) seen.push(((await pool.call("whoami")) as { pid: number }).pid);
      const distinct = [...new Set(seen)];
      assert.ok(distinct.length >= 3, `pids: ${seen.join(",")}`);
      // Each worker served at most 5 requests (the first also answered DescribeTools).
      for (const pid of distinct) assert.ok(seen.filter((p) => p === pid).length <= 5);
      assert.ok(pool.state().restarts >= 2);
      assert.match(
        await pool.metricsRegistry.metrics(),
        /toolbridge_worker_restarts_total\{reason="recycled"\} [2-9]/,
      );
    } finally {
      await pool.stop();
      await waitUntil(() => survivors(seen).length === 0, "recycled workers are gone", {
        tries: 200,
        intervalMs: 50,
      });
    }
  });
});
