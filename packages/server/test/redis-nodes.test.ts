// Host processes sharing a real redis-server through the Redis store, driven by the real
// TypeScript client: a restarted host keeps its sessions, two nodes serve one state
// (reads, racing writers, watches in commit order, resumed watches, the session limit),
// and a Redis killed with SIGKILL gives clients a clear retriable error, then service again.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { BridgeError, ErrorType, ToolBridgeClient, type VariableUpdate } from "@toolbridge/client";
import { fails } from "./support/assertions.js";
import { type HostProcess, startHost } from "./support/host-process.js";
import { incrementRace } from "./support/races.js";
import { type RedisServer, startRedis } from "./support/redis-server.js";
import { waitUntil } from "./support/wait.js";

// Reconnect quickly after a host comes back; the default channel backoff starts at 1 s.
const FAST_RECONNECT = {
  channelOptions: { "grpc.initial_reconnect_backoff_ms": 50, "grpc.max_reconnect_backoff_ms": 200 },
};

async function take(watch: AsyncIterable<VariableUpdate>, count: number): Promise<VariableUpdate[]> {
  const out: VariableUpdate[] = [];
  for await (const update of watch) {
    out.push(update);
    if (out.length >= count) break;
  }
  return out;
}

const summary = (u: VariableUpdate) =>
  u.kind === "set" || u.kind === "initial"
    ? `${u.kind} ${u.name}@${u.version}=${String(u.variable.value)}`
    : u.kind === "deleted"
      ? `deleted ${u.name}@${u.version}`
      : u.kind;

/** Waits until the client's channel reaches a serving host again. */
async function serving(client: ToolBridgeClient): Promise<void> {
  await waitUntil(() => client.healthCheck(500), "the host comes back", { tries: 200, intervalMs: 50 });
}

const running: HostProcess[] = [];
async function host(redis: RedisServer, flags: Record<string, string | number> = {}): Promise<HostProcess> {
  const started = await startHost({ store: redis.url, ...flags });
  running.push(started);
  return started;
}

after(async () => {
  await Promise.all(running.map((h) => h.stop()));
});

describe("a host restarted on the Redis store", () => {
  let redis: RedisServer;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis.stop();
  });

  it("keeps the client's session and variables: the client continues without SessionNotFound", async () => {
    const first = await host(redis);
    assert.match(first.stdout(), /toolbridge store: redis:\/\/127\.0\.0\.1:\d+\/0/);
    const port = Number(first.target.split(":").pop());
    const client = new ToolBridgeClient(first.target, FAST_RECONNECT);
    try {
      const { sessionId } = await client.initializeSession("", { owner: "restart-test" });
      await client.setVariable("progress", { step: 3, done: ["a", "b"] });
      await client.setVariable("agent_demo", { signature: "question -> answer", tools: ["add"] });
      assert.equal(await client.executeTool("add", { a: 1, b: 2 }), 3);
      const watch = client.watchVariables(["progress"]);
      await watch.ready();
      await client.setVariable("progress", { step: 4, done: ["a", "b", "c"] });
      const [seen] = await take(watch, 1);
      assert.equal(await first.stop(), 0);

      const second = await host(redis, { port });
      await serving(client);
      // Plain calls, no retry helper: the session is simply there.
      assert.equal(client.sessionId, sessionId);
      assert.equal(await client.executeTool("add", { a: 20, b: 22 }), 42);
      assert.deepEqual((await client.getVariable("progress")).value, { step: 4, done: ["a", "b", "c"] });
      assert.equal((await client.getVariable("progress")).version, 2);
      assert.deepEqual((await client.getVariable("agent_demo")).value, {
        signature: "question -> answer",
        tools: ["add"],
      });
      assert.equal((await client.sessionInfo()).metadata.owner, "restart-test");
      assert.equal((await client.initializeSession(sessionId)).created, false);
      // The watch that the restart cut resumes on the new process from its last sequence.
      await client.setVariable("progress", { step: 5, done: [] });
      const resumed = client.watchVariables(["progress"], {
        resumeAfterSequence: seen?.kind === "set" ? seen.sequence : -1,
      });
      assert.deepEqual((await take(resumed, 1)).map(summary), ["set progress@3=[object Object]"]);
      await second.stop();
    } finally {
      client.close();
    }
  });
});

describe("two host processes on one Redis", () => {
  let redis: RedisServer;
  let nodeA: HostProcess;
  let nodeB: HostProcess;
  let a: ToolBridgeClient;
  let b: ToolBridgeClient;

  before(async () => {
    redis = await startRedis();
    [nodeA, nodeB] = await Promise.all([host(redis), host(redis)]);
    a = new ToolBridgeClient(nodeA.target);
    b = new ToolBridgeClient(nodeB.target);
    const { sessionId } = await a.initializeSession();
    assert.equal((await b.initializeSession(sessionId)).created, false);
  });

  after(async () => {
    a.close();
    b.close();
    await Promise.all([nodeA.stop(), nodeB.stop()]);
    await redis.stop();
  });

  it("a variable written through B is read through A, and the other way round", async () => {
    await b.setVariable("shared", "from B", { tags: { node: "b" } });
    const read = await a.getVariable("shared");
    assert.deepEqual([read.value, read.version, read.tags], ["from B", 1, { node: "b" }]);
    await a.setVariable("shared", "from A");
    assert.equal((await b.getVariable("shared")).version, 2);
    assert.deepEqual(
      (await b.listVariables()).map((v) => v.name),
      ["shared"],
    );
  });

  it("racing read-modify-write writers through different nodes lose no update", async () => {
    await a.setVariable("counter", 0);
    const conflicts = await incrementRace("counter", [
      [a, 30],
      [b, 30],
    ]);
    const counter = await a.getVariable("counter");
    assert.deepEqual([counter.value, counter.version], [60, 61]);
    // Both read before either writes (support/races.ts): until one is done, every round is a race.
    assert.ok(conflicts >= 30, `${conflicts} conflicts`);
  });

  it("a watcher on A sees B's writes in commit order, without gap or duplicate, and resumes on B", async () => {
    const watch = a.watchVariables(["w.x", "w.y"]);
    await watch.ready();
    const writes = async (client: ToolBridgeClient, name: string) => {
      for (let i = 0; i < 25; i++) await client.setVariable(name, i);
    };
    await Promise.all([writes(b, "w.x"), writes(a, "w.y"), b.setVariable("w.other", 1)]);
    await b.deleteVariable("w.x");
    const seen = await take(watch, 51);
    for (const name of ["w.x", "w.y"]) {
      assert.deepEqual(
        seen
          .filter((u) => u.kind === "set" && u.name === name)
          .map((u) => (u.kind === "set" ? u.variable.value : 0)),
        Array.from({ length: 25 }, (_, i) => i),
        name,
      );
    }
    assert.equal(summary(seen.at(-1) as VariableUpdate), "deleted w.x@26");
    const sequences = seen.map((u) => ("sequence" in u ? u.sequence : 0));
    assert.ok(
      sequences.every((s, i) => i === 0 || s > (sequences[i - 1] ?? 0)),
      `sequences in commit order: ${sequences.join(",")}`,
    );
    assert.equal(new Set(sequences).size, 51);

    // Cut the watch after 10 updates, write on, and resume through the other node.
    const cut = a.watchVariables(["w.y"]);
    await cut.ready();
    for (let i = 100; i < 110; i++) await b.setVariable("w.y", i);
    const firstTen = await take(cut, 10);
    const lastSeen = firstTen.at(-1);
    const resumeAfter = lastSeen !== undefined && "sequence" in lastSeen ? lastSeen.sequence : -1;
    for (let i = 110; i < 115; i++) await a.setVariable("w.y", i);
    const resumed = b.watchVariables(["w.y"], { resumeAfterSequence: resumeAfter });
    await resumed.ready();
    await a.setVariable("w.y", 115);
    const rest = await take(resumed, 6);
    assert.deepEqual(
      rest.map((u) => (u.kind === "set" ? u.variable.value : u.kind)),
      [110, 111, 112, 113, 114, 115],
    );
    assert.equal((rest[0] as { sequence: number }).sequence, resumeAfter + 1);
  });

  it("a session cleaned up through B ends A's watchers", async () => {
    const other = new ToolBridgeClient(nodeA.target);
    const onB = new ToolBridgeClient(nodeB.target);
    try {
      const { sessionId } = await other.initializeSession();
      await onB.initializeSession(sessionId);
      const watch = other.watchVariables();
      await watch.ready();
      await onB.setVariable("last", "words");
      await onB.cleanup();
      assert.deepEqual((await take(watch, 5)).map(summary), ["set last@1=words", "session_ended"]);
      await assert.rejects(other.getVariable("last"), fails(ErrorType.SessionNotFound));
    } finally {
      other.close();
      onB.close();
    }
  });
});

describe("the session limit across nodes", () => {
  it("counts the sessions of every node sharing the Redis", async () => {
    const redis = await startRedis();
    const [nodeA, nodeB] = await Promise.all([
      host(redis, { "max-concurrent-sessions": 3 }),
      host(redis, { "max-concurrent-sessions": 3 }),
    ]);
    const clients = [nodeA, nodeB, nodeA, nodeB].map((n) => new ToolBridgeClient(n.target));
    try {
      const [c1, c2, c3, c4] = clients as [
        ToolBridgeClient,
        ToolBridgeClient,
        ToolBridgeClient,
        ToolBridgeClient,
      ];
      await c1.initializeSession();
      await c2.initializeSession();
      await c3.initializeSession();
      await assert.rejects(
        c4.initializeSession(),
        fails(ErrorType.SessionLimitExceeded, (e) => /maxConcurrentSessions/.test(e.message)),
      );
      await c1.cleanup();
      await c4.initializeSession();
    } finally {
      for (const client of clients) client.close();
      await Promise.all([nodeA.stop(), nodeB.stop()]);
      await redis.stop();
    }
  });
});

describe("Redis killed while a client works", () => {
  it("answers with a retriable Unavailable naming Redis, keeps serving, and continues when Redis is back", async () => {
    const redis = await startRedis({ durable: true });
    const node = await host(redis);
    const client = new ToolBridgeClient(node.target);
    try {
      await client.initializeSession();
      for (let i = 0; i < 20; i++) {
        await client.setVariable("n", i);
        assert.equal(await client.executeTool("add", { a: i, b: 1 }), i + 1);
      }
      const watch = client.watchVariables(["n"]);
      await watch.ready();
      await redis.kill("SIGKILL");
      // A watch cannot promise "no gap" without Redis: it ends with UNAVAILABLE, to be resumed.
      await assert.rejects(
        take(watch, 1),
        fails(
          ErrorType.CommunicationError,
          (e) => e.details.grpc_code === "UNAVAILABLE" && /Redis/.test(e.message),
        ),
      );
      // Said in the store's terms; the Redis client's own wording stays in details.reason.
      const down = (e: BridgeError) =>
        /^the session store \(Redis at redis:\/\/127\.0\.0\.1:\d+\/0\) is unreachable; retry in a moment$/.test(
          e.message,
        ) &&
        e.details.store === "redis" &&
        e.details.reason !== undefined &&
        e.details.reason !== "";
      await assert.rejects(client.setVariable("n", 99), fails(ErrorType.Unavailable, down));
      await assert.rejects(client.getVariable("n"), fails(ErrorType.Unavailable, down));
      await assert.rejects(client.executeTool("add", { a: 1, b: 1 }), fails(ErrorType.Unavailable, down));
      assert.equal(node.process.exitCode, null, "the host is still running");

      await redis.restart();
      for (let i = 0; ; i++) {
        try {
          await client.setVariable("n", 100);
          break;
        } catch (error) {
          if (!(error instanceof BridgeError && error.type === ErrorType.Unavailable) || i > 400) throw error;
          await sleep(50);
        }
      }
      const n = await client.getVariable("n");
      assert.deepEqual([n.value, n.version], [100, 21]);
      assert.equal(await client.executeTool("add", { a: 2, b: 2 }), 4);
      assert.doesNotMatch(node.stderr(), /"level":(50|60)[^\n]*internal/i);
    } finally {
      client.close();
      await node.stop();
      await redis.stop();
    }
  });
});
