// The multiplexed call stream (Calls) against the real host CLI, driven by a raw grpc-js
// duplex call so that the test decides when frames go out and when responses are read.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import * as grpc from "@grpc/grpc-js";
import { type NativeValue, ToolBridgeClient } from "@toolbridge/client";
import { encodeValue, pb } from "@toolbridge/core";
import { type HostProcess, startHost } from "./support/host-process.js";

type Duplex = grpc.ClientDuplexStream<pb.CallFrame, pb.ToolCallResponse>;

function callFrame(
  sessionId: string,
  requestId: string,
  toolId: string,
  kwargs: Record<string, NativeValue>,
): pb.CallFrame {
  return {
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
  };
}

function cancelFrame(requestId: string): pb.CallFrame {
  return { frame: { $case: "cancel", value: { requestId } } };
}

/** Collects a duplex call's responses and its final status. */
function collect(call: Duplex) {
  const responses: pb.ToolCallResponse[] = [];
  const waiting: (() => void)[] = [];
  const ended = new Promise<grpc.StatusObject>((resolve) => {
    call.on("status", resolve);
    call.on("error", () => {}); // the status says it all
  });
  const listen = () =>
    call.on("data", (response: pb.ToolCallResponse) => {
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
      call.write(callFrame(sessionId, `lim-${i}`, "slow", { ms, tag: `ts-lim-${i}` }));
    });
    await until(durations.length);
    call.end();
    assert.equal((await ended).code, grpc.status.OK);
    assert.deepEqual(
      responses.map((r) => [r.success, r.result?.kind?.$case === "stringValue" && r.result.kind.value]),
      durations.map(() => [true, "done"]),
    );
    // Out of order: the order of the answers is not the order of the calls.
    assert.notDeepEqual(
      responses.map((r) => r.requestId),
      durations.map((_, i) => `lim-${i}`),
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
    call.write(callFrame(sessionId, "gone", "slow", { ms: 20_000, tag: "ts-cancel-frame" }));
    call.write(callFrame(sessionId, "kept", "add", { a: 1, b: 2 }));
    await until(1);
    while (!(await events("ts-cancel-frame")).some((e) => e.event === "started")) await sleep(20);
    call.write(cancelFrame("gone"));
    call.write(cancelFrame("no-such-call"));
    await until(2);
    call.end();
    assert.equal((await ended).code, grpc.status.OK);
    const byId = new Map(responses.map((r) => [r.requestId, r]));
    assert.equal(byId.get("kept")?.success, true);
    assert.equal(byId.get("gone")?.error?.type, "Cancelled");
    assert.deepEqual((await events("ts-cancel-frame")).map((e) => [e.event, e.detail]).slice(1), [
      ["aborted", "Cancelled"],
    ]);
  });

  it("ends the stream with INVALID_ARGUMENT for a call without a request id or with one in flight", async () => {
    for (const frames of [
      [callFrame(sessionId, "", "add", { a: 1, b: 2 })],
      [
        callFrame(sessionId, "twice", "slow", { ms: 5_000, tag: "ts-twice" }),
        callFrame(sessionId, "twice", "add", { a: 1, b: 2 }),
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
        /^Calls: (every call on Calls needs a request_id|request_id 'twice' is already)/,
      );
    }
    // The cancelled call of the second stream was stopped on the host.
    while (!(await events("ts-twice")).some((e) => e.event === "aborted")) await sleep(20);
  });

  it("gives a call's request id to the tool and echoes it, and refuses one over 128 characters in-band", async () => {
    const call = raw.calls();
    const { responses, ended, listen, until } = collect(call);
    listen();
    const long = "x".repeat(129);
    call.write(callFrame(sessionId, "req-seen-by-tool", "slow", { ms: 0, tag: "ts-request-id" }));
    call.write(callFrame(sessionId, long, "add", { a: 1, b: 2 }));
    await until(2);
    call.end();
    await ended;
    const byId = new Map(responses.map((r) => [r.requestId, r]));
    assert.equal(byId.get(long)?.error?.type, "ValidationError");
    assert.equal(byId.get(long)?.error?.details.field, "request_id");
    assert.deepEqual((await events("ts-request-id"))[0], {
      tag: "ts-request-id",
      event: "started",
      detail: "req-seen-by-tool",
    });
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
      busy.write(callFrame(sessionId, "in-flight", "slow", { ms: 400, tag: "ts-drain" }));
      while (
        !((await client.executeTool("events", { tag: "ts-drain" })) as { event: string }[]).some(
          (e) => e.event === "started",
        )
      )
        await sleep(20);
      host.process.kill("SIGTERM");
      const idleStatus = await idle.ended;
      assert.equal(idleStatus.code, grpc.status.UNAVAILABLE);
      assert.match(idleStatus.details, /shutting down/);
      busy.write(callFrame(sessionId, "too-late", "add", { a: 1, b: 2 }));
      await running.until(2);
      const byId = new Map(running.responses.map((r) => [r.requestId, r]));
      assert.equal(byId.get("in-flight")?.success, true);
      assert.equal(byId.get("too-late")?.error?.type, "Unavailable");
      assert.equal(byId.get("too-late")?.error?.details.reason, "shutting_down");
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
      call.write(callFrame(sessionId, "long", "slow", { ms: 30_000, tag: "ts-grace" }));
      while (
        !((await client.executeTool("events", { tag: "ts-grace" })) as { event: string }[]).some(
          (e) => e.event === "started",
        )
      )
        await sleep(20);
      host.process.kill("SIGTERM");
      await until(1);
      assert.equal(responses[0]?.error?.type, "Unavailable");
      assert.match(responses[0]?.error?.message ?? "", /grace period ended/);
      assert.equal(await host.stop(), 0);
    } finally {
      client.close();
      raw.close();
      await host.stop();
    }
  });
});
