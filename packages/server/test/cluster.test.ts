// Host processes sharing one Redis, driven by the real TypeScript client: a tool's rate
// limit holds for all nodes together, and a tool registered for one session on node A is
// listed on node B, its calls (plain and streamed) forwarded to A, and once A is gone they
// fail with Unavailable naming A.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ErrorType, type ToolBridgeClient } from "@toolbridge/client";
import { fails } from "./support/assertions.js";
import { newToken, writeTokens } from "./support/credentials.js";
import type { HostProcess } from "./support/host-process.js";
import { nodeOf, nodesOnRedis } from "./support/nodes.js";

const { url, host, client } = nodesOnRedis();

async function nodes(count: number): Promise<{ hosts: HostProcess[]; clients: ToolBridgeClient[] }> {
  const hosts = await Promise.all(Array.from({ length: count }, () => host({ store: url() })));
  const made = hosts.map((h) => client(h.target));
  const { sessionId } = await (made[0] as ToolBridgeClient).initializeSession();
  for (const one of made.slice(1)) await one.initializeSession(sessionId);
  return { hosts, clients: made };
}

describe("limits across nodes", () => {
  it("a tool's rateLimitPerMinute counts the calls of every node together", async () => {
    const {
      clients: [a, b],
    } = await nodes(2);
    assert.ok(a !== undefined && b !== undefined);
    // rate_limited allows 3 calls per minute.
    assert.equal(await a.executeTool("rate_limited"), "ok");
    assert.equal(await b.executeTool("rate_limited"), "ok");
    assert.equal(await a.executeTool("rate_limited"), "ok");
    for (const client of [b, a]) {
      await assert.rejects(
        client.executeTool("rate_limited"),
        fails(ErrorType.RateLimitExceeded, (e) => Number(e.details.retry_after_ms) > 0),
      );
    }
  });
});

describe("a session tool across nodes", () => {
  let hostA: HostProcess;
  let a: ToolBridgeClient;
  let b: ToolBridgeClient;
  before(async () => {
    const made = await nodes(2);
    [hostA] = made.hosts as [HostProcess];
    [a, b] = made.clients as [ToolBridgeClient, ToolBridgeClient];
    assert.equal(await a.executeTool("register_session_echo", { name: "mine" }), nodeOf(hostA));
  });

  it("is listed on every node, as a session tool", async () => {
    for (const client of [a, b]) {
      const spec = (await client.listTools()).find((tool) => tool.name === "mine");
      assert.ok(spec, "the session tool is listed");
      assert.equal(spec.scope, "session");
    }
  });

  it("is run by the node it was registered on, whichever node the call reaches", async () => {
    const value = { n: 1.5, list: [1, "two"], big: 2n ** 70n };
    assert.deepEqual(await b.executeTool("mine", { value }), { value, node: nodeOf(hostA) });
    const chunks = [];
    for await (const chunk of b.streamTool("mine_stream", { count: 3 })) chunks.push(chunk);
    assert.deepEqual(
      chunks,
      [0, 1, 2].map((i) => ({ i, node: nodeOf(hostA) })),
    );
    // Its errors come back as they are on node A.
    await assert.rejects(b.executeTool("mine", {}), fails(ErrorType.ValidationError));
  });

  it("fails with Unavailable naming the node once that node is gone", async () => {
    await hostA.stop("SIGKILL");
    await assert.rejects(
      b.executeTool("mine", { value: 1 }),
      fails(
        ErrorType.Unavailable,
        (e) => e.message.includes(nodeOf(hostA)) && e.details.node === nodeOf(hostA),
      ),
    );
    // The node's other tools are every node's: they still answer here.
    assert.equal(await b.executeTool("add", { a: 1, b: 2 }), 3);
  });
});

describe("a streaming session tool called through another node", () => {
  it("gets the stream's default budget, streamTotalTimeoutMs, as on its own node", async () => {
    // toolTimeoutMs is far below streamTotalTimeoutMs: a stream bounded by it would end at once.
    const flags = { store: url(), "tool-timeout-ms": 100, "stream-total-timeout-ms": 1500 };
    const [hostA, hostB] = await Promise.all([host(flags), host(flags)]);
    assert.ok(hostA !== undefined && hostB !== undefined);
    const [a, b] = [client(hostA.target), client(hostB.target)];
    const { sessionId } = await a.initializeSession();
    await b.initializeSession(sessionId);
    assert.equal(await a.executeTool("register_session_echo", { name: "budget" }), nodeOf(hostA));
    const held = async (through: ToolBridgeClient) => {
      const chunks: unknown[] = [];
      const error = await (async () => {
        for await (const chunk of through.streamTool("budget_hold")) chunks.push(chunk);
      })().then(
        () => assert.fail("the held stream completed"),
        (failure: unknown) => failure,
      );
      return { chunks, error };
    };
    // The same stream run locally (on A) and forwarded (B to A) at once, each until its budget ends it.
    for (const { chunks, error } of await Promise.all([held(a), held(b)])) {
      assert.deepEqual(chunks, [{ i: 0, node: nodeOf(hostA) }]);
      fails(
        ErrorType.Timeout,
        (e) => e.details.timeout === "total" && e.details.timeout_ms === "1500",
      )(error);
    }
  });
});

describe("a session tool across nodes that authenticate their callers", () => {
  const dir = mkdtempSync(join(tmpdir(), "toolbridge-cluster-auth-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("is forwarded for the session's owner, and stays the owner's", async () => {
    const [alice, bob] = [newToken(), newToken()];
    const tokens = writeTokens(dir, { [alice]: "alice", [bob]: "bob" });
    const [hostA, hostB] = await Promise.all(
      [0, 1].map(() => host({ store: url(), "auth-tokens-file": tokens })),
    );
    assert.ok(hostA !== undefined && hostB !== undefined);
    const onA = client(hostA.target, { token: alice });
    const onB = client(hostB.target, { token: alice });
    const { sessionId } = await onA.initializeSession();
    await onB.initializeSession(sessionId);
    assert.equal(await onA.executeTool("register_session_echo", { name: "owned" }), nodeOf(hostA));
    // Node B checks alice against the session, then forwards the call as a peer node.
    assert.deepEqual(await onB.executeTool("owned", { value: 7 }), { value: 7, node: nodeOf(hostA) });
    const bobOnB = client(hostB.target, { token: bob });
    await assert.rejects(bobOnB.initializeSession(sessionId), fails(ErrorType.SessionNotFound));
  });
});
