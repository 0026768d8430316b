// The multiplexed call stream (Calls) against the real host CLI, driven by a raw grpc-js
// duplex call so that the test decides when frames go out and when responses are read.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { type NativeValue, ToolBridgeClient } from "@toolbridge/client";
import { encodeValue, pb } from "@toolbridge/core";
import { type HostProcess, startHost } from "./support/host-process.js";
import { waitUntil } from "./support/wait.js";

type Duplex = grpc.ClientDuplexStream<pb.CallFrame, pb.CallAnswer>;

let frames = 0;

/**
 * A call frame; its request id is `request-<call id>-<n>`, unique in the file, unless given
 * ("" lets the host name the call). Reusing one would replay the earlier call or be refused.
 */
function callFrame(
  sessionId: string,
  callId: number,
  toolId: string,
  kwargs: Record<string, NativeValue>,
  requestId = `request-${callId}-${++frames}`,
): pb.CallFrame {
  return {
    callId: BigInt(callId),
    frame: {
      $case: "call",
      value: {
        sessionId,
        toolId,
        args: [],
        kwargs: Object.fromEntries(Object.entries(kwargs).map(([k, v]) => [k, encodeValue(v)])),
        requestId,
        timeoutMs: 0,
      },
    },
    traceContext: {},
  };
}

function cancelFrame(callId: number): pb.CallFrame {
  return { callId: BigInt(callId), frame: { $case: "cancel", value: {} }, traceContext: {} };
}

/** Collects a duplex call's responses and its final status. */
function collect(call: Duplex) {
  const responses: pb.CallAnswer[] = [];
  const waiting: (() => void)[] = [];
  const ended = new Promise<grpc.StatusObject>((resolve) => {
    call.on("status", resolve);
    call.on("error", () => {}); // the status says it all
  });
  const listen = () =>
    call.on("data", (response: pb.CallAnswer) => {
      responses.push(response);
      for (const wake of waiting.splice(0)) wake();
    });
  const until = async (count: number) => {
    while (responses.length < count) await new Promise<void>((resolve) => waiting.push(resolve));
  };
  return { responses, ended, listen, until };
}

describe("Calls, the multiplexed call stream", () => {
  let host: HostProcess;
  let client: ToolBridgeClient;
  let raw: pb.ToolBridgeClient;
  let sessionId: string;

  before(async () => {
    host = await startHost({ "max-calls-per-stream": 4 });
    client = new ToolBridgeClient(host.target);
    sessionId = (await client.initializeSession()).sessionId;
    raw = new pb.ToolBridgeClient(host.target, grpc.credentials.createInsecure());
  });
  after(async () => {
    client.close();
    raw.close();
    assert.equal(await host.stop(), 0, host.stderr());
  });

  const events = async (prefix: string) =>
    ((await client.executeTool("events", {})) as { tag: string; event: string; detail: string }[]).filter(
      (e) => e.tag.startsWith(prefix),
    );

  it("runs calls concurrently up to the stream's limit and answers each as it finishes", async () => {
    const call = raw.calls();
    const { responses, ended, listen, until } = collect(call);
    listen();
    const durations = [250, 200, 150, 100, 50, 0, 250, 0, 100, 50];
    durations.forEach((ms, i) => {
      call.write(callFrame(sessionId, i + 1, "slow", { ms, tag: `ts-lim-${i}` }));
    });
    await until(durations.length);
    call.end();
    assert.equal((await ended).code, grpc.status.OK);
    const results = responses.map(({ response }) => {
      const kind = response?.result?.kind;
      return [response?.success, kind?.$case === "stringValue" ? kind.value : undefined];
    });
    assert.deepEqual(
      results,
      durations.map(() => [true, "done"]),
    );
    // Each answer carries its call's id and request id; out of order: not in the order of the calls.
    assert.ok(responses.every((a) => a.response?.requestId.startsWith(`request-${a.callId}-`)));
    assert.notDeepEqual(
      responses.map((a) => Number(a.callId)),
      durations.map((_, i) => i + 1),
    );
    // At most 4 ran at once (max-calls-per-stream), and 4 did.
    let running = 0;
    let most = 0;
    for (const e of await events("ts-lim-")) {
      if (e.event === "started") most = Math.max(most, ++running);
      if (e.event === "finished") running--;
    }
    assert.equal(most, 4);
  });

  it("cancels a call on a cancel frame: its tool is aborted and it is answered Cancelled", async () => {
    const call = raw.calls();
    const { responses, ended, listen, until } = collect(call);
    listen();
    call.write(callFrame(sessionId, 1, "slow", { ms: 20_000, tag: "ts-cancel-frame" }));
    call.write(callFrame(sessionId, 2, "add", { a: 1, b: 2 }));
    await until(1);
    await waitUntil(
      async () => (await events("ts-cancel-frame")).some((e) => e.event === "started"),
      "the slow call started",
    );
    call.write(cancelFrame(1));
    call.write(cancelFrame(99));
    await until(2);
    call.end();
    assert.equal((await ended).code, grpc.status.OK);
    const byId = new Map(responses.map((a) => [Number(a.callId), a.response]));
    assert.equal(byId.get(2)?.success, true);
    assert.equal(byId.get(1)?.error?.type, "Cancelled");
    assert.deepEqual((await events("ts-cancel-frame")).map((e) => [e.event, e.detail]).slice(1), [
      ["aborted", "Cancelled"],
    ]);
  });

  it("ends the stream with INVALID_ARGUMENT for call id 0 or a call id in flight", async () => {
    for (const frames of [
      [callFrame(sessionId, 0, "add", { a: 1, b: 2 })],
      [
        callFrame(sessionId, 5, "slow", { ms: 5_000, tag: "ts-twice" }),
        callFrame(sessionId, 5, "add", { a: 1, b: 2 }),
      ],
    ]) {
      const call = raw.calls();
      const { ended, listen } = collect(call);
      listen();
      for (const frame of frames) call.write(frame);
      const status = await ended;
      assert.equal(status.code, grpc.status.INVALID_ARGUMENT);
      assert.match(
        status.details,
        /^Calls: (every call on Calls needs a call_id|call_id 5 is already in flight)/,
      );
    }
    // The cancelled call of the second stream was stopped on the host.
    await waitUntil(
      async () => (await events("ts-twice")).some((e) => e.event === "aborted"),
      "the cancelled call was aborted on the host",
    );
  });

  it("gives a call's request id to the tool as ExecuteTool does, and names a call that has none", async () => {
    const call = raw.calls();
    const { responses, ended, listen, until } = collect(call);
    listen();
    call.write(callFrame(sessionId, 1, "slow", { ms: 0, tag: "ts-request-id" }, "req-seen-by-tool"));
    call.write(callFrame(sessionId, 2, "add", { a: 1, b: 2 }, ""));
    await until(2);
    call.end();
    await ended;
    const byId = new Map(responses.map((a) => [Number(a.callId), a.response]));
    assert.equal(byId.get(1)?.requestId, "req-seen-by-tool");
    assert.match(byId.get(2)?.requestId ?? "", /^req_/);
    assert.deepEqual((await events("ts-request-id"))[0], {
      tag: "ts-request-id",
      event: "started",
      detail: "req-seen-by-tool",
    });
  });

  it("answers a call repeated under its request id with the first answer, as ExecuteTool does", async () => {
    const call = raw.calls();
    const { responses, ended, listen, until } = collect(call);
    listen();
    call.write(callFrame(sessionId, 1, "slow", { ms: 0, tag: "ts-replayed" }, "req-replayed"));
    await until(1);
    call.write(callFrame(sessionId, 2, "slow", { ms: 0, tag: "ts-replayed" }, "req-replayed"));
    await until(2);
    call.end();
    await ended;
    assert.deepEqual(
      responses.map((a) => Number(a.callId)),
      [1, 2],
    );
    // The record of the first answer (its own host time aside: that is the replay's).
    const [first, second] = responses.map((a) => ({
      ...a.response,
      metrics: { ...a.response?.metrics, hostMs: 0 },
    }));
    assert.deepEqual(second, first);
    // The tool ran once: the second answer is the record of the first call.
    const started = (await events("ts-replayed")).filter((e) => e.event === "started");
    assert.equal(started.length, 1);
    // The same request id through ExecuteTool is the same call too.
    await client.executeTool("slow", { ms: 0, tag: "ts-replayed" }, { requestId: "req-replayed" });
    assert.equal((await events("ts-replayed")).filter((e) => e.event === "started").length, 1);
  });
});

describe("Calls during a host shutdown", () => {
  it("ends idle streams at once, lets running calls finish and refuses new ones", {
    timeout: 30_000,
  }, async () => {
    // A grace period far longer than the test: an idle stream must not hold the drain up.
    const host = await startHost({ "shutdown-grace-ms": 60_000 });
    const client = new ToolBridgeClient(host.target);
    const sessionId = (await client.initializeSession()).sessionId;
    const raw = new pb.ToolBridgeClient(host.target, grpc.credentials.createInsecure());
    try {
      const idle = collect(raw.calls());
      idle.listen();
      const busy = raw.calls();
      const running = collect(busy);
      running.listen();
      busy.write(callFrame(sessionId, 1, "slow", { ms: 400, tag: "ts-drain" }));
      await started(client, "ts-drain");
      host.process.kill("SIGTERM");
      const idleStatus = await idle.ended;
      assert.equal(idleStatus.code, grpc.status.UNAVAILABLE);
      assert.match(idleStatus.details, /shutting down/);
      busy.write(callFrame(sessionId, 2, "add", { a: 1, b: 2 }));
      await running.until(2);
      const byId = new Map(running.responses.map((a) => [Number(a.callId), a.response]));
      assert.equal(byId.get(1)?.success, true);
      assert.equal(byId.get(2)?.error?.type, "Unavailable");
      assert.equal(byId.get(2)?.error?.details.reason, "shutting_down");
      assert.equal((await running.ended).code, grpc.status.UNAVAILABLE);
      assert.equal(await host.stop(), 0);
      assert.doesNotMatch(host.stderr(), /grace period over/);
    } finally {
      client.close();
      raw.close();
      await host.stop();
    }
  });

  it("answers calls still running when the grace period ends with Unavailable", async () => {
    const host = await startHost({ "shutdown-grace-ms": 200 });
    const client = new ToolBridgeClient(host.target);
    const sessionId = (await client.initializeSession()).sessionId;
    const raw = new pb.ToolBridgeClient(host.target, grpc.credentials.createInsecure());
    try {
      const call = raw.calls();
      const { responses, listen, until } = collect(call);
      listen();
      call.write(callFrame(sessionId, 1, "slow", { ms: 30_000, tag: "ts-grace" }));
      await started(client, "ts-grace");
      host.process.kill("SIGTERM");
      await until(1);
      assert.equal(responses[0]?.response?.error?.type, "Unavailable");
      assert.match(responses[0]?.response?.error?.message ?? "", /grace period ended/);
      assert.equal(await host.stop(), 0);
    } finally {
      client.close();
      raw.close();
      await host.stop();
    }
  });
});

/** Waits until the test tools recorded that the call tagged `tag` started. */
async function started(client: ToolBridgeClient, tag: string): Promise<void> {
  await waitUntil(async () => {
    const seen = (await client.executeTool("events", { tag })) as { event: string }[];
    return seen.some((e) => e.event === "started");
  }, `the call tagged ${tag} started`);
}
