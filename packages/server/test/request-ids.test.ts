// A request id names one call. Calls reusing one id with other arguments, at once, on
// ExecuteTool and in batches, each get their own result or RequestIdReused, never another
// call's result: on the memory store, on the Redis store, and on two nodes sharing a Redis
// where the duplicates arrive at the other node. The same call repeated is still replayed.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { BridgeError, ErrorType, type NativeValue, type ToolBridgeClient } from "@toolbridge/client";
import { decodeValue, encodeValue, pb } from "@toolbridge/core";
import { fails } from "./support/assertions.js";
import { nodesOnRedis } from "./support/nodes.js";
import { waitUntil } from "./support/wait.js";

const { url, host, client } = nodesOnRedis();

/** What one call got: its result, or the type of its error and the request id it names. */
type Got =
  | { readonly result: NativeValue }
  | { readonly error: string; readonly requestId: string | undefined };

function got(call: Promise<NativeValue>): Promise<Got> {
  return call.then(
    (result) => ({ result }),
    (error: unknown) => {
      if (!(error instanceof BridgeError)) throw error;
      return { error: error.type, requestId: error.details.request_id };
    },
  );
}

/** Call k of a test, through `via`; `expected(k)` is its own result. */
interface Calls {
  call(k: number, via: ToolBridgeClient): Promise<NativeValue>;
  expected(k: number): NativeValue;
}

/** add(k, 1) under `requestId`: k + 1. */
const adds = (requestId: string): Calls => ({
  call: (k, via) => via.executeTool("add", {}, { args: [k, 1], requestId }),
  expected: (k) => k + 1,
});

/**
 * Sixteen concurrent calls k = 0..15 under one request id, the k-th through
 * `clients[k % clients.length]`: each gets its own result or RequestIdReused naming the id,
 * and exactly one ran. Afterwards the id still answers only that call, on every node.
 */
async function sixteenUnderOneId(
  clients: readonly ToolBridgeClient[],
  requestId: string,
  { call, expected }: Calls,
): Promise<void> {
  const via = (k: number) => clients[k % clients.length] as ToolBridgeClient;
  const outcomes = await Promise.all(Array.from({ length: 16 }, (_, k) => got(call(k, via(k)))));
  const ran: number[] = [];
  for (const [k, outcome] of outcomes.entries()) {
    if ("result" in outcome) {
      assert.deepEqual(outcome.result, expected(k), `call ${k} got another call's result`);
      ran.push(k);
    } else {
      assert.deepEqual(outcome, { error: ErrorType.RequestIdReused, requestId });
    }
  }
  assert.equal(ran.length, 1, `calls that ran: ${ran.join(", ")}`);
  const k = ran[0] as number;
  for (const client of clients) {
    assert.deepEqual(await call(k, client), expected(k));
    await assert.rejects(call((k + 1) % 16, client), fails(ErrorType.RequestIdReused));
  }
}

/**
 * Four concurrent batches under `requestId`, batch j holding add(10 j + i, 1) for i = 0..2,
 * the j-th through `clients[j % clients.length]`: each item gets its own sum or
 * RequestIdReused naming `<id>/<i>`, and each index ran in exactly one batch.
 */
async function batchesUnderOneId(clients: readonly ToolBridgeClient[], requestId: string): Promise<void> {
  const batch = (j: number) =>
    (clients[j % clients.length] as ToolBridgeClient).executeBatch(
      [0, 1, 2].map((i) => ({ toolId: "add", args: [10 * j + i, 1] })),
      { requestId, parallel: true },
    );
  const batches = await Promise.all([0, 1, 2, 3].map(batch));
  for (const i of [0, 1, 2]) {
    const ran: number[] = [];
    for (const [j, results] of batches.entries()) {
      const item = results[i];
      if (item instanceof BridgeError) {
        assert.equal(item.type, ErrorType.RequestIdReused, item.message);
        assert.equal(item.details.request_id, `${requestId}/${i}`);
      } else {
        assert.equal(item, 10 * j + i + 1, `batch ${j} item ${i} got another call's result`);
        ran.push(j);
      }
    }
    assert.equal(ran.length, 1, `batches whose item ${i} ran: ${ran.join(", ")}`);
  }
}

/** A path no file has yet: `wait_for_file` calls on it run until `release` creates it. */
function gate(): { readonly path: string; release(): void } {
  const path = join(tmpdir(), `toolbridge-request-ids-${randomUUID()}`);
  return { path, release: () => writeFileSync(path, "") };
}

/** How many `wait_for_file` calls tagged `tag` started on the node `via` talks to. */
async function starts(via: ToolBridgeClient, tag: string): Promise<number> {
  const events = (await via.executeTool("events", { tag })) as { event: string }[];
  return events.filter((e) => e.event === "started").length;
}

/**
 * A call held running on `first`'s node: another call under its id, sent through `second`,
 * is refused before the first ends; the same call gets the first call's result, and the
 * tool ran once.
 */
async function reuseWhileRunning(first: ToolBridgeClient, second: ToolBridgeClient): Promise<void> {
  const { path, release } = gate();
  const tag = `held-${randomUUID()}`;
  const requestId = `running-${tag}`;
  const running = first.executeTool("wait_for_file", { path, tag }, { requestId });
  running.catch(() => {});
  await waitUntil(async () => (await starts(first, tag)) === 1, "the first call started");
  await assert.rejects(
    second.executeTool("wait_for_file", { path, tag: `${tag}-other` }, { requestId }),
    fails(ErrorType.RequestIdReused, (e) => e.details.request_id === requestId),
  );
  const duplicate = second.executeTool("wait_for_file", { tag, path }, { requestId });
  release();
  assert.equal(await running, "released");
  assert.equal(await duplicate, "released");
  assert.equal((await starts(first, tag)) + (first === second ? 0 : await starts(second, tag)), 1);
  assert.equal(await starts(second, `${tag}-other`), 0);
}

/**
 * add(k, 1) for k = 1..3 on one Calls stream whose metadata carries `x-request-id` and
 * whose frames carry no request id; the answers by call id, once all came.
 */
async function addsOnOneStream(target: string, sessionId: string): Promise<Map<number, pb.ToolCallResponse>> {
  const raw = new pb.ToolBridgeClient(target, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  metadata.set("x-request-id", "one-for-the-whole-stream");
  const stream = raw.calls(metadata);
  const answers = new Map<number, pb.ToolCallResponse>();
  try {
    const ended = new Promise<grpc.StatusObject>((resolve) => stream.on("status", resolve));
    stream.on("error", () => {}); // the status says it all
    stream.on("data", (answer: pb.CallAnswer) => {
      if (answer.response !== undefined) answers.set(Number(answer.callId), answer.response);
    });
    for (const k of [1, 2, 3]) {
      const args = [encodeValue(k), encodeValue(1)];
      const call = { sessionId, toolId: "add", args, kwargs: {}, requestId: "", timeoutMs: 0 };
      stream.write({ callId: BigInt(k), frame: { $case: "call", value: call }, traceContext: {} });
    }
    stream.end();
    assert.equal((await ended).code, grpc.status.OK);
    return answers;
  } finally {
    raw.close();
  }
}

for (const store of ["memory", "redis"] as const) {
  describe(`request ids on the ${store} store`, () => {
    let a: ToolBridgeClient;
    let target: string;
    before(async () => {
      target = (await host(store === "redis" ? { store: url() } : {})).target;
      a = client(target);
      await a.initializeSession();
    });

    it("sixteen concurrent ExecuteTool calls reusing one request id never get another call's result", async () => {
      await sixteenUnderOneId([a], "dup-req", adds("dup-req"));
    });

    it("four concurrent batches reusing one request id never get another batch's results", async () => {
      await batchesUnderOneId([a], "same-req");
    });

    it("another call under the id of a call still running is refused at once; the same call gets its result", async () => {
      await reuseWhileRunning(a, a);
    });

    it("on the Calls stream a call's request id is its frame's, not the stream's x-request-id header", async () => {
      const answers = await addsOnOneStream(target, a.sessionId ?? "");
      for (const k of [1, 2, 3]) {
        const answer = answers.get(k);
        assert.equal(answer?.success, true, answer?.error?.message);
        assert.equal(answer.result === undefined ? undefined : decodeValue(answer.result), k + 1);
        assert.match(answer.requestId, /^req_/);
      }
    });

    it("the same call repeated is replayed, its keyword arguments in any order: the tool runs once", async () => {
      const key = randomUUID();
      const requestId = `retry-${key}`;
      const first = await a.executeTool("bump", { key, ms: 0 }, { requestId });
      const again = await a.executeTool("bump", { ms: 0, key }, { requestId });
      assert.deepEqual(again, first);
      assert.equal(await a.executeTool("bumps", { key }), 1);
      // Passed another way (positionally) it is another request: refused, not run.
      await assert.rejects(
        a.executeTool("bump", {}, { args: [key, 0], requestId }),
        fails(ErrorType.RequestIdReused),
      );
      assert.equal(await a.executeTool("bumps", { key }), 1);
    });
  });
}

describe("request ids on two nodes sharing one Redis", () => {
  let a: ToolBridgeClient;
  let b: ToolBridgeClient;
  before(async () => {
    const [nodeA, nodeB] = await Promise.all([host({ store: url() }), host({ store: url() })]);
    a = client(nodeA.target);
    b = client(nodeB.target);
    const { sessionId } = await a.initializeSession();
    await b.initializeSession(sessionId);
  });

  it("concurrent calls reusing one request id on both nodes never get another call's result", async () => {
    await sixteenUnderOneId([a, b], "dup-req", adds("dup-req"));
  });

  it("concurrent batches reusing one request id on both nodes never get another batch's results", async () => {
    await batchesUnderOneId([a, b], "same-req");
  });

  it("another call under the id of a call running on the other node is refused at once", async () => {
    await reuseWhileRunning(a, b);
  });

  it("calls of a session tool forwarded to its node, reusing one request id, never get another call's result", async () => {
    const name = `echo_${randomUUID().replaceAll("-", "")}`;
    const served = await a.executeTool("register_session_echo", { name });
    const requestId = `forwarded-${name}`;
    await sixteenUnderOneId([a, b], requestId, {
      call: (k, via) => via.executeTool(name, { value: k }, { requestId }),
      expected: (k) => ({ value: k, node: served }),
    });
  });
});
