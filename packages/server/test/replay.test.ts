// Idempotent replay against real host processes: a tool with a side effect (a counter)
// called twice, or twice at once, under one request id runs once, on the memory store, on
// the Redis store, and across two nodes sharing a Redis; a node killed while it holds a
// claim leaves no record, so a retry on another node runs the call again.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { before, describe, it } from "node:test";
import { BridgeError, ErrorType, type ToolBridgeClient } from "@toolbridge/client";
import { fails } from "./support/assertions.js";
import type { HostProcess } from "./support/host-process.js";
import { nodeOf, nodesOnRedis } from "./support/nodes.js";
import { waitUntil } from "./support/wait.js";

const { url, host, client } = nodesOnRedis();

interface Bumped {
  count: number;
  node: string;
}

for (const store of ["memory", "redis"] as const) {
  describe(`replay on the ${store} store`, () => {
    let a: ToolBridgeClient;
    let target: string;
    before(async () => {
      const h = await host(store === "redis" ? { store: url() } : {});
      target = h.target;
      a = client(target);
      await a.initializeSession();
    });

    it("a call repeated under its request id gets the first outcome and the tool runs once", async () => {
      const key = randomUUID();
      const requestId = `req-${key}`;
      const first = (await a.executeTool("bump", { key }, { requestId })) as unknown as Bumped;
      const second = (await a.executeTool("bump", { key }, { requestId })) as unknown as Bumped;
      assert.equal(first.count, 1);
      assert.deepEqual(second, first);
      assert.equal(await a.executeTool("bumps", { key }), 1);
      // Another request id is another call.
      assert.equal(((await a.executeTool("bump", { key })) as unknown as Bumped).count, 2);
    });

    it("a duplicate arriving while the first still runs waits for it: the tool runs once", async () => {
      const key = randomUUID();
      const requestId = `req-${key}`;
      const calls = Array.from({ length: 4 }, () => a.executeTool("bump", { key, ms: 300 }, { requestId }));
      const results = (await Promise.all(calls)) as unknown as Bumped[];
      for (const result of results) assert.deepEqual(result, results[0]);
      assert.equal(await a.executeTool("bumps", { key }), 1);
    });

    it("a tool's failure is recorded too; a refusal before the tool ran is not", async () => {
      const key = randomUUID();
      const failing = `req-fail-${key}`;
      for (let i = 0; i < 2; i++) {
        await assert.rejects(
          a.executeTool("bump", { key, fail: true }, { requestId: failing }),
          fails(ErrorType.ToolExecutionError, (e) => e.message.endsWith("(1)")),
        );
      }
      assert.equal(await a.executeTool("bumps", { key }), 1);

      const refused = `req-refused-${key}`;
      await assert.rejects(
        a.executeTool("bump", { key, ms: -1 }, { requestId: refused }),
        fails(ErrorType.ValidationError),
      );
      const ran = (await a.executeTool("bump", { key }, { requestId: refused })) as unknown as Bumped;
      assert.equal(ran.count, 2);
    });

    it("a batch retried under its request id replays each item", async () => {
      const key = randomUUID();
      const items = [0, 1, 2].map(() => ({ toolId: "bump", kwargs: { key } }));
      const requestId = `batch-${key}`;
      const first = await a.executeBatch(items, { requestId, parallel: false });
      const again = await a.executeBatch(items, { requestId, parallel: false });
      assert.deepEqual(
        first.map((r) => (r as unknown as Bumped).count),
        [1, 2, 3],
      );
      assert.deepEqual(again, first);
      assert.equal(await a.executeTool("bumps", { key }), 3);
    });

    it("records belong to their session: the same request id in another session is another call", async () => {
      const key = randomUUID();
      const requestId = `req-${key}`;
      await a.executeTool("bump", { key }, { requestId });
      const other = client(target);
      await other.initializeSession();
      const elsewhere = (await other.executeTool("bump", { key }, { requestId })) as unknown as Bumped;
      assert.equal(elsewhere.count, 2);
    });
  });
}

describe("replay across two nodes on one Redis", () => {
  let nodeA: HostProcess;
  let nodeB: HostProcess;
  let a: ToolBridgeClient;
  let b: ToolBridgeClient;
  const total = async (key: string) =>
    Number(await a.executeTool("bumps", { key })) + Number(await b.executeTool("bumps", { key }));

  before(async () => {
    [nodeA, nodeB] = await Promise.all([host({ store: url() }), host({ store: url() })]);
    a = client(nodeA.target);
    b = client(nodeB.target);
    const { sessionId } = await a.initializeSession();
    await b.initializeSession(sessionId);
  });

  it("a call repeated on the other node gets the first node's outcome", async () => {
    const key = randomUUID();
    const requestId = `req-${key}`;
    const first = (await a.executeTool("bump", { key }, { requestId })) as unknown as Bumped;
    const second = (await b.executeTool("bump", { key }, { requestId })) as unknown as Bumped;
    assert.deepEqual(second, first);
    assert.equal(first.node, nodeOf(nodeA));
    assert.equal(await total(key), 1);
  });

  it("racing duplicates on both nodes run the tool once", async () => {
    const key = randomUUID();
    const requestId = `req-${key}`;
    const results = (await Promise.all([
      a.executeTool("bump", { key, ms: 300 }, { requestId }),
      b.executeTool("bump", { key, ms: 300 }, { requestId }),
      a.executeTool("bump", { key, ms: 300 }, { requestId }),
      b.executeTool("bump", { key, ms: 300 }, { requestId }),
    ])) as unknown as Bumped[];
    for (const result of results) assert.deepEqual(result, results[0]);
    assert.equal(await total(key), 1);
  });

  it("a node killed mid-call records nothing: the retry on the other node runs the call", async () => {
    const doomed = await host({ store: url() });
    const c = client(doomed.target);
    await c.initializeSession(a.sessionId ?? "");
    const key = randomUUID();
    const requestId = `req-${key}`;
    const inFlight = c.executeTool("bump", { key, ms: 5000 }, { requestId });
    inFlight.catch(() => {});
    // The call holds its claim once its tool runs; the counter counts after the wait, so
    // the dead node never counted.
    await waitUntil(
      async () => (await c.executeTool("bump_starts", { key })) === 1,
      "the call's tool started",
    );
    doomed.process.kill("SIGKILL");
    await assert.rejects(inFlight, (error) => error instanceof BridgeError);
    // The retry is the same call (a request id answers only its own call's arguments).
    const retried = (await b.executeTool("bump", { key, ms: 5000 }, { requestId })) as unknown as Bumped;
    assert.equal(retried.count, 1);
    assert.equal(retried.node, nodeOf(nodeB));
    assert.equal(await total(key), 1);
  });
});
