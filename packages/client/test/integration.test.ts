// The TS client end to end against the real host CLI over loopback: sessions, calls, streams, errors.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import * as grpc from "@grpc/grpc-js";
import { ErrorType, type NativeValue, orderedKeys, Tensor, ToolBridgeClient } from "@toolbridge/client";
import { pb } from "@toolbridge/core";
import {
  type HealthCheckResponse,
  HealthCheckResponse_ServingStatus,
  HealthClient,
} from "../../server/src/gen/grpc/health/v1/health.js";
import { fails } from "../../server/test/support/assertions.js";
import { type HostProcess, startHost } from "../../server/test/support/host-process.js";
import { waitUntil } from "../../server/test/support/wait.js";

async function connect(host: HostProcess, sessionId = ""): Promise<ToolBridgeClient> {
  const client = new ToolBridgeClient(host.target);
  await client.initializeSession(sessionId);
  return client;
}

describe("the client against the real host", () => {
  let host: HostProcess;
  let client: ToolBridgeClient;

  before(async () => {
    host = await startHost();
    client = await connect(host);
  });
  after(async () => {
    client.close();
    assert.equal(await host.stop(), 0);
  });

  it("initializes, attaches to an existing session and lists tool specs", async () => {
    const other = new ToolBridgeClient(host.target);
    const session = await other.initializeSession(client.sessionId);
    assert.equal(session.created, false);
    assert.equal(session.sessionId, client.sessionId);
    assert.ok(session.capabilities.includes("streaming"));
    other.close();

    const tools = await client.listTools();
    const add = tools.find((t) => t.name === "add");
    assert.ok(add);
    assert.equal(add.description, "Adds two numbers.");
    assert.deepEqual(
      add.parameters.map((p) => [p.name, p.type, p.required, p.description]),
      [
        ["a", "number", true, "First addend"],
        ["b", "number", true, "Second addend"],
      ],
    );
    assert.deepEqual(add.parametersSchema.required, ["a", "b"]);
    assert.equal(add.cacheable, true);
    const described = tools.find((t) => t.name === "describe_args");
    assert.deepEqual(
      described?.parameters.map((p) => [p.name, p.default]),
      [
        ["name", undefined],
        ["count", 1],
        ["ratio", undefined],
        ["mode", "fast"],
        ["tags", []],
      ],
    );
    assert.equal(tools.find((t) => t.name === "count")?.streaming, true);
  });

  it("executes tools with keyword and positional arguments", async () => {
    assert.equal(await client.executeTool("add", { a: 2, b: 3.5 }), 5.5);
    assert.equal(await client.executeTool("add", { b: 1 }, { args: [41] }), 42);
    assert.deepEqual(await client.executeTool("describe_args", { name: "ada" }), {
      name: "ada",
      count: 1,
      mode: "fast",
      tags: [],
    });
  });

  it("round-trips every value kind through a tool", async () => {
    const value = new Map<string, NativeValue>([
      ["big", 2n ** 80n],
      ["beyond_safe", 2n ** 60n],
      ["nan", Number.NaN],
      ["neg_zero", -0],
      ["bytes", new Uint8Array([0, 1, 0, 255])],
      ["when", new Date(Date.UTC(2026, 10, 24, 12, 0, 0, 123))],
      ["tensor", Tensor.fromTypedArray(new Float32Array([1, 2, 3, 4]), [2, 2])],
      ["nested", [{ z: 1, a: [null, true, "é"] }]],
    ]);
    const echoed = (await client.executeTool("echo", { value })) as Record<string, NativeValue>;
    assert.equal(echoed.big, 2n ** 80n);
    assert.equal(echoed.beyond_safe, 2n ** 60n);
    assert.ok(Number.isNaN(echoed.nan));
    assert.ok(Object.is(echoed.neg_zero, -0));
    assert.deepEqual([...(echoed.bytes as Uint8Array)], [0, 1, 0, 255]);
    assert.equal((echoed.when as Date).toISOString(), "2026-11-24T12:00:00.123Z");
    const tensor = echoed.tensor as Tensor;
    assert.equal(tensor.dtype, "float32");
    assert.deepEqual(tensor.shape, [2, 2]);
    assert.deepEqual([...(tensor.toTypedArray() as Float32Array)], [1, 2, 3, 4]);
    assert.deepEqual(Object.keys(echoed), [...value.keys()]);
  });

  it("keeps the order of map keys through a tool, integer-like keys included", async () => {
    const value = new Map<string, NativeValue>([
      ["b", 1],
      ["10", 2],
      [
        "a",
        [
          new Map<string, NativeValue>([
            ["9", 0],
            ["x", 0],
            ["1", 0],
          ]),
        ],
      ],
      ["2", 4],
    ]);
    // A plain object lists "2" and "10" first, but remembers the order the map arrived in.
    const echoed = (await client.executeTool("echo", { value })) as Record<string, NativeValue>;
    assert.deepEqual(Object.keys(echoed), ["2", "10", "b", "a"]);
    assert.deepEqual(orderedKeys(echoed), ["b", "10", "a", "2"]);
    assert.deepEqual(orderedKeys((echoed.a as NativeValue[])[0] as object), ["9", "x", "1"]);
    // Sent again as it came back, it keeps that order; a client decoding to Map sees it directly.
    const asMaps = new ToolBridgeClient(host.target, { decode: { maps: "map" } });
    try {
      await asMaps.initializeSession(client.sessionId);
      const again = (await asMaps.executeTool("echo", { value: echoed })) as Map<string, NativeValue>;
      assert.deepEqual([...again.keys()], ["b", "10", "a", "2"]);
      const inner = (again.get("a") as NativeValue[])[0] as Map<string, NativeValue>;
      assert.deepEqual([...inner.keys()], ["9", "x", "1"]);
    } finally {
      asMaps.close();
    }
  });

  it("streams chunks in order and completes", async () => {
    const chunks: NativeValue[] = [];
    for await (const chunk of client.streamTool("count", { n: 5 })) chunks.push(chunk);
    assert.deepEqual(chunks, [{ i: 0 }, { i: 1 }, { i: 2 }, { i: 3 }, { i: 4 }]);
  });

  it("reports an unknown session", async () => {
    const doomed = await connect(host);
    const gone = new ToolBridgeClient(host.target);
    await gone.initializeSession(doomed.sessionId);
    await doomed.cleanup();
    await assert.rejects(
      gone.executeTool("add", { a: 1, b: 2 }),
      fails(ErrorType.SessionNotFound, (e) => e.message.includes("InitializeSession")),
    );
    doomed.close();
    gone.close();
  });

  it("reports an unknown tool with the tools that exist", async () => {
    await assert.rejects(
      client.executeTool("nope"),
      fails(ErrorType.ToolNotFound, (e) => e.message.includes("available: echo, add")),
    );
  });

  it("rejects arguments failing the schema, naming the field, without running the tool", async () => {
    await assert.rejects(
      client.executeTool("add", { a: 1, b: "two" }),
      fails(
        ErrorType.ValidationError,
        (e) => e.details.field === "b" && e.message.includes("expected number"),
      ),
    );
    await assert.rejects(
      client.executeTool("add", { a: 1, b: 2, c: 3 }),
      fails(ErrorType.ValidationError, (e) => e.details.field === "c"),
    );
    await assert.rejects(
      client.executeTool("add", { a: 1 }, { args: [1] }),
      fails(ErrorType.ValidationError, (e) => e.message.includes("multiple values for argument 'a'")),
    );
    await assert.rejects(
      client.executeTool("add", {}, { args: [1, 2, 3] }),
      fails(ErrorType.ValidationError, (e) => e.message.includes("takes 2 positional")),
    );
  });

  it("reports a tool that throws, with its message", async () => {
    await assert.rejects(
      client.executeTool("fail", { message: "disk on fire" }),
      fails(
        ErrorType.ToolExecutionError,
        (e) => e.message === "disk on fire" && e.details.exception === "RangeError",
      ),
    );
    await assert.rejects(
      client.executeTool("bad_result"),
      fails(ErrorType.ToolExecutionError, (e) => e.message.includes("cannot be sent")),
    );
  });

  it("times a tool out and fires its AbortSignal", async () => {
    await assert.rejects(
      client.executeTool("slow_short_timeout", { ms: 5000, tag: "ts-timeout" }),
      fails(ErrorType.Timeout, (e) => e.details.timeout_ms === "200"),
    );
    const events = await client.executeTool("events", { tag: "ts-timeout" });
    assert.deepEqual(events, [{ tag: "ts-timeout", event: "aborted", detail: "Timeout" }]);
  });

  it("applies a per-call timeout shorter than the tool's", async () => {
    await assert.rejects(
      client.executeTool("slow", { ms: 5000, tag: "ts-call-timeout" }, { timeoutMs: 150 }),
      fails(ErrorType.Timeout, (e) => e.details.timeout_ms === "150"),
    );
  });

  it("aborts a tool when the client cancels the call", async () => {
    const controller = new AbortController();
    const pending = client.executeTool("slow", { ms: 5000, tag: "ts-cancel" }, { signal: controller.signal });
    await started(client, "ts-cancel");
    controller.abort();
    await assert.rejects(
      pending,
      fails(ErrorType.CommunicationError, (e) => e.details.grpc_code === "CANCELLED"),
    );
    await waitUntil(async () => {
      const events = (await client.executeTool("events", { tag: "ts-cancel" })) as {
        event: string;
        detail: string;
      }[];
      return events.some((e) => e.event === "aborted" && e.detail === "Cancelled");
    }, "the tool saw the cancellation");
  });

  it("sends the error chunk after the data chunks of a failing stream", async () => {
    const seen: NativeValue[] = [];
    await assert.rejects(
      (async () => {
        for await (const chunk of client.streamTool("fail_stream", { after: 3, message: "midway" }))
          seen.push(chunk);
      })(),
      fails(ErrorType.ToolExecutionError, (e) => e.message === "midway"),
    );
    assert.deepEqual(seen, [0, 1, 2]);
  });

  it("aborts a streaming tool when the client stops reading", async () => {
    let read = 0;
    for await (const _ of client.streamTool("count", { n: 1000, delay_ms: 20, tag: "ts-stop" })) {
      if (++read === 3) break;
    }
    await waitUntil(async () => {
      const events = (await client.executeTool("events", { tag: "ts-stop" })) as { event: string }[];
      return events.some((e) => e.event === "aborted") && events.some((e) => e.event === "stream-closed");
    }, "the tool was aborted and its stream closed");
    const produced = (await client.executeTool("produced", { tag: "ts-stop" })) as number;
    assert.ok(produced < 20, `the tool kept producing after the client left: ${produced}`);
  });

  it("applies back-pressure: a paused reader pauses the tool", async () => {
    const total = 2000;
    const stream = client.streamTool("count", { n: total, payload_bytes: 65536, tag: "ts-pressure" });
    for (let i = 0; i < 3; i++) await stream.next();
    await sleep(600);
    const whilePaused = (await client.executeTool("produced", { tag: "ts-pressure" })) as number;
    assert.ok(whilePaused < 200, `the host buffered ${whilePaused} of ${total} chunks for a paused reader`);
    let rest = 0;
    for await (const _ of stream) rest++;
    assert.equal(rest, total - 3);
  });

  it("refuses a request over the message limit and keeps serving", async () => {
    const big = new ToolBridgeClient(host.target, { maxMessageBytes: 32 * 1024 * 1024 });
    await big.initializeSession(client.sessionId);
    await assert.rejects(
      big.executeTool("echo", { value: new Uint8Array(11 * 1024 * 1024) }),
      fails(ErrorType.CommunicationError, (e) => e.grpcCode === 8 && /larger than max/.test(e.message)),
    );
    big.close();
    assert.equal(await client.executeTool("add", { a: 1, b: 1 }), 2);
  });

  it("reports a result over the message limit in-band", async () => {
    await assert.rejects(
      client.executeTool("bytes", { size: 11 * 1024 * 1024 }),
      fails(ErrorType.ResourceExhausted, (e) => e.message.includes("maxMessageBytes")),
    );
    assert.equal(((await client.executeTool("bytes", { size: 1024 })) as Uint8Array).length, 1024);
  });

  it("answers health checks and keeps the session alive on heartbeat", async () => {
    assert.equal(await client.healthCheck(), true);
    const before = await client.sessionInfo();
    await sleep(20);
    const expiry = await client.heartbeat();
    assert.ok(expiry.getTime() > before.expiresAt.getTime());
  });

  it("cleans up a session; cleaning up twice is harmless", async () => {
    const temp = await connect(host);
    await temp.cleanup();
    await temp.cleanup();
    await assert.rejects(temp.executeTool("add", { a: 1, b: 1 }), fails(ErrorType.SessionNotFound));
    temp.close();
  });
});

describe("session lifetime", () => {
  it("expires idle sessions and a heartbeat keeps one alive", async () => {
    const host = await startHost({ "session-timeout-ms": 400, "sweep-interval-ms": 50 });
    try {
      const idle = await connect(host);
      const busy = await connect(host);
      for (let i = 0; i < 6; i++) {
        await sleep(100);
        await busy.heartbeat();
      }
      await assert.rejects(idle.executeTool("add", { a: 1, b: 1 }), fails(ErrorType.SessionNotFound));
      assert.equal(await busy.executeTool("add", { a: 1, b: 1 }), 2);
      idle.close();
      busy.close();
    } finally {
      await host.stop();
    }
  });

  it("enforces the session limit and frees a slot on cleanup", async () => {
    const host = await startHost({ "max-concurrent-sessions": 2 });
    try {
      const first = await connect(host);
      const second = await connect(host);
      const third = new ToolBridgeClient(host.target);
      await assert.rejects(third.initializeSession(), fails(ErrorType.SessionLimitExceeded));
      await first.cleanup();
      await third.initializeSession();
      for (const c of [first, second, third]) c.close();
    } finally {
      await host.stop();
    }
  });
});

describe("graceful shutdown", () => {
  it("finishes the call in flight, refuses new ones, and exits 0", async () => {
    const host = await startHost({ "shutdown-grace-ms": 5000 });
    const client = await connect(host);
    const inFlight = client.executeTool("slow", { ms: 1500, tag: "ts-shutdown" });
    await started(client, "ts-shutdown");
    host.process.kill("SIGTERM");
    // Shutting down: the host answers health checks with NOT_SERVING from the signal on.
    await waitUntil(async () => !(await client.healthCheck()), "the host stops serving");
    await assert.rejects(
      client.executeTool("add", { a: 1, b: 1 }),
      fails(ErrorType.CommunicationError, (e) => e.details.grpc_code === "UNAVAILABLE"),
    );
    assert.equal(await inFlight, "done");
    assert.equal(await host.stop(), 0);
    client.close();
  });

  it("answers health checks with NOT_SERVING while a call in flight holds the grace period open", async () => {
    const host = await startHost({ "shutdown-grace-ms": 60_000 });
    const client = await connect(host);
    const stub = new pb.ToolBridgeClient(host.target, grpc.credentials.createInsecure());
    const standard = new HealthClient(host.target, grpc.credentials.createInsecure());
    const release = join(mkdtempSync(join(tmpdir(), "toolbridge-drain-")), "release");
    const check = (service: string) =>
      new Promise<pb.HealthCheckResponse>((resolve, reject) =>
        stub.healthCheck({ service }, (e, r) => (e ? reject(e) : resolve(r))),
      );
    const standardCheck = (service: string) =>
      new Promise<HealthCheckResponse_ServingStatus>((resolve, reject) =>
        standard.check({ service }, (e, r) => (e ? reject(e) : resolve(r.status))),
      );
    try {
      const inFlight = client.executeTool("wait_for_file", { path: release, tag: "ts-drain" });
      await started(client, "ts-drain");
      const watch = standard.watch({ service: "" });
      const watched: HealthCheckResponse_ServingStatus[] = [];
      watch.on("data", (r: HealthCheckResponse) => watched.push(r.status));
      const watchEnded = new Promise<void>((resolve) => watch.on("end", resolve));
      await waitUntil(async () => watched.length === 1, "the watch sent SERVING");

      host.process.kill("SIGTERM");
      const { NOT_SERVING } = pb.HealthCheckResponse_ServingStatus;
      await waitUntil(async () => (await check("")).status === NOT_SERVING, "the host answers NOT_SERVING");
      assert.equal((await check("toolbridge.v1.ToolBridge")).status, NOT_SERVING);
      await assert.rejects(check("toolbridge"), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND);
      assert.equal(await standardCheck(""), HealthCheckResponse_ServingStatus.NOT_SERVING);
      assert.equal(
        await standardCheck("toolbridge.v1.ToolBridge"),
        HealthCheckResponse_ServingStatus.NOT_SERVING,
      );
      await waitUntil(async () => watched.length === 2, "the watch sent NOT_SERVING");
      assert.deepEqual(watched, [
        HealthCheckResponse_ServingStatus.SERVING,
        HealthCheckResponse_ServingStatus.NOT_SERVING,
      ]);
      // The host still accepts connections: a new client's health check is answered, its calls refused.
      const late = new ToolBridgeClient(host.target);
      assert.equal(await late.healthCheck(), false);
      await assert.rejects(
        late.initializeSession(),
        fails(
          ErrorType.CommunicationError,
          (e) => e.details.grpc_code === "UNAVAILABLE" && /shutting down/.test(e.message),
        ),
      );
      late.close();
      await assert.rejects(
        client.executeTool("add", { a: 1, b: 1 }),
        fails(ErrorType.CommunicationError, (e) => e.details.grpc_code === "UNAVAILABLE"),
      );

      // Once the last call finishes, health watches are ended and the host exits without waiting out the grace period.
      writeFileSync(release, "");
      assert.equal(await inFlight, "released");
      await watchEnded;
      assert.equal(await host.stop(), 0);
    } finally {
      client.close();
      stub.close();
      standard.close();
      await host.stop();
    }
  });

  it("cancels the calls in flight on a second signal", async () => {
    const host = await startHost({ "shutdown-grace-ms": 60_000 });
    const client = await connect(host);
    const inFlight = client.executeTool("slow", { ms: 60_000, tag: "ts-second-signal" });
    await started(client, "ts-second-signal");
    host.process.kill("SIGTERM");
    await waitUntil(async () => !(await client.healthCheck()), "the host stops serving");
    host.process.kill("SIGTERM");
    await assert.rejects(inFlight, fails(ErrorType.CommunicationError));
    assert.equal(await host.stop(), 0);
    client.close();
  });

  it("cancels calls still running when the grace period ends", async () => {
    const host = await startHost({ "shutdown-grace-ms": 300 });
    const client = await connect(host);
    const inFlight = client.executeTool("slow", { ms: 10_000, tag: "ts-grace" });
    await started(client, "ts-grace");
    host.process.kill("SIGTERM");
    await assert.rejects(inFlight, fails(ErrorType.CommunicationError));
    assert.equal(await host.stop(), 0);
    client.close();
  });
});

/** Waits until the test tools recorded that the call tagged `tag` started. */
async function started(client: ToolBridgeClient, tag: string): Promise<void> {
  await waitUntil(async () => {
    const events = (await client.executeTool("events", { tag })) as { event: string }[];
    return events.some((e) => e.event === "started");
  }, `the call tagged ${tag} started`);
}
