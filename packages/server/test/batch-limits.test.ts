// Batches, per-tool limits, deadlines, metrics and request-id
// logs, against the real CLI. Ordering and concurrency are observed inside the tools
// (latches, probes), never by timing.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { BridgeError, ErrorType, type NativeValue, ToolBridgeClient } from "@toolbridge/client";
import { encodeValue, pb } from "@toolbridge/core";
import { type HostProcess, startHost } from "./support/host-process.js";
import { waitUntil } from "./support/wait.js";

function isBridgeError(type: string, check: (e: BridgeError) => boolean = () => true) {
  return (error: unknown) => {
    assert.ok(error instanceof BridgeError, `expected BridgeError, got ${String(error)}`);
    assert.equal(error.type, type, error.message);
    assert.ok(check(error), `unexpected error: ${error.message} ${JSON.stringify(error.details)}`);
    return true;
  };
}

function assertError(value: NativeValue | BridgeError, type: string, pattern?: RegExp): BridgeError {
  assert.ok(value instanceof BridgeError, `expected a ${type} error, got ${JSON.stringify(value)}`);
  assert.equal(value.type, type, value.message);
  if (pattern !== undefined) assert.match(value.message, pattern);
  return value;
}

describe("batches, limits and metrics against the real host", () => {
  let host: HostProcess;
  let client: ToolBridgeClient;

  before(async () => {
    host = await startHost({
      "max-batch-size": 20,
      "batch-max-parallel": 4,
      "metrics-port": 0,
      "log-level": "debug",
    });
    client = new ToolBridgeClient(host.target);
    await client.initializeSession();
  });
  after(async () => {
    client.close();
    assert.equal(await host.stop(), 0);
  });

  it("returns batch results in request order when items complete out of order", async () => {
    // c opens B, which releases b, which opens A, which releases a: completion order c, b, a.
    const results = (await client.executeBatch([
      { toolId: "latch", kwargs: { tag: "a", wait: "order-A" } },
      { toolId: "latch", kwargs: { tag: "b", wait: "order-B", open: "order-A" } },
      { toolId: "latch", kwargs: { tag: "c", open: "order-B" } },
      { toolId: "add", kwargs: { a: 1, b: "x" } },
      { toolId: "no_such_tool" },
    ])) as (NativeValue | BridgeError)[];
    const [a, b, c] = results.slice(0, 3) as { tag: string; finished: number }[];
    assert.deepEqual([a?.tag, b?.tag, c?.tag], ["a", "b", "c"]);
    assert.ok(a!.finished > b!.finished && b!.finished > c!.finished, JSON.stringify(results.slice(0, 3)));
    const invalid = assertError(results[3]!, ErrorType.ValidationError);
    assert.equal(invalid.details.field, "b");
    assert.equal(invalid.details.index, "3");
    assertError(results[4]!, ErrorType.ToolNotFound);
  });

  it("stop_on_error, sequential: the items after the failure are Cancelled and never run", async () => {
    const results = await client.executeBatch(
      [
        { toolId: "add", kwargs: { a: 1, b: 2 } },
        { toolId: "fail", kwargs: { message: "boom" } },
        { toolId: "flaky", kwargs: { key: "seq-skip-1", failures: 0 } },
        { toolId: "flaky", kwargs: { key: "seq-skip-2", failures: 0 } },
      ],
      { parallel: false, stopOnError: true },
    );
    assert.equal(results.length, 4);
    assert.equal(results[0], 3);
    assertError(results[1]!, ErrorType.ToolExecutionError, /boom/);
    for (const skipped of results.slice(2)) {
      const error = assertError(skipped, ErrorType.Cancelled, /item 1 failed/);
      assert.equal(error.details.reason, "stop_on_error");
    }
    assert.equal(await client.executeTool("call_count", { key: "seq-skip-1" }), 0);
    assert.equal(await client.executeTool("call_count", { key: "seq-skip-2" }), 0);
  });

  it("stop_on_error, parallel: running items finish, items not yet started are Cancelled", async () => {
    const failsBefore = await errorsOf("fail");
    const pending = client.executeBatch(
      [
        { toolId: "fail", kwargs: { message: "first" } },
        { toolId: "latch", kwargs: { tag: "running", wait: "par-stop" } },
        { toolId: "flaky", kwargs: { key: "par-skip-1", failures: 0 } },
        { toolId: "flaky", kwargs: { key: "par-skip-2", failures: 0 } },
      ],
      { stopOnError: true, maxParallel: 2 },
    );
    // Item 0 has failed once the host counted it; only then let item 1 finish.
    await waitUntil(async () => (await errorsOf("fail")) > failsBefore, "the host counted item 0's failure", {
      tries: 250,
    });
    await client.executeTool("latch", { tag: "opener", open: "par-stop" });
    const results = await pending;
    assertError(results[0]!, ErrorType.ToolExecutionError, /first/);
    assert.equal((results[1] as { tag: string }).tag, "running");
    assertError(results[2]!, ErrorType.Cancelled);
    assertError(results[3]!, ErrorType.Cancelled);
    assert.equal(await client.executeTool("call_count", { key: "par-skip-1" }), 0);
  });

  it("max_parallel bounds the items running at once, as seen inside the tool", async () => {
    const probes = (tag: string, n: number, untilActive: number) =>
      Array.from({ length: n }, () => ({ toolId: "probe", kwargs: { tag, until_active: untilActive } }));
    const three = await client.executeBatch(probes("mp3", 12, 3), { maxParallel: 3 });
    assert.ok(
      three.every((r) => r === "mp3"),
      JSON.stringify(three),
    );
    assert.equal(await client.executeTool("probe_max", { tag: "mp3" }), 3);
    // max_parallel 0 takes the host's batchMaxParallel (4 here).
    await client.executeBatch(probes("mp-default", 8, 4));
    assert.equal(await client.executeTool("probe_max", { tag: "mp-default" }), 4);
    await client.executeBatch(probes("mp-seq", 4, 1), { parallel: false });
    assert.equal(await client.executeTool("probe_max", { tag: "mp-seq" }), 1);
  });

  it("refuses a batch over maxBatchSize with a clear error and keeps serving", async () => {
    const items = Array.from({ length: 21 }, (_, i) => ({ toolId: "add", kwargs: { a: i, b: 0 } }));
    await assert.rejects(
      client.executeBatch(items),
      isBridgeError(ErrorType.ValidationError, (e) =>
        /21 items, over the host's limit of 20 \(maxBatchSize\)/.test(e.message),
      ),
    );
    const twenty = await client.executeBatch(items.slice(0, 20));
    assert.deepEqual(
      twenty,
      Array.from({ length: 20 }, (_, i) => i),
    );
    assert.deepEqual(await client.executeBatch([]), []);
  });

  it("refuses duplicate item indices", async () => {
    const stub = new pb.ToolBridgeClient(host.target, grpc.credentials.createInsecure());
    const item = { index: 7, toolId: "add", args: [], kwargs: {}, timeoutMs: 0 };
    const response = await new Promise<pb.BatchToolCallResponse>((resolve, reject) =>
      stub.batchExecuteTools(
        { sessionId: client.sessionId!, batchId: "", items: [item, item], config: undefined, requestId: "" },
        (error, res) => (error ? reject(error) : resolve(res)),
      ),
    );
    stub.close();
    assert.equal(response.success, false);
    assert.equal(response.error?.type, ErrorType.ValidationError);
    assert.match(response.error?.message ?? "", /index 7/);
  });

  it("cancelling a batch aborts the tools it runs", async () => {
    const controller = new AbortController();
    const pending = client.executeBatch(
      [
        { toolId: "slow", kwargs: { ms: 10_000, tag: "batch-cancel-1" } },
        { toolId: "slow", kwargs: { ms: 10_000, tag: "batch-cancel-2" } },
      ],
      { signal: controller.signal },
    );
    const events = async (tag: string) =>
      (await client.executeTool("events", { tag })) as { event: string; detail: string }[];
    await waitUntil(
      async () => (await events("batch-cancel-2")).some((e) => e.event === "started"),
      "the second item started",
      { tries: 250 },
    );
    controller.abort();
    await assert.rejects(
      pending,
      isBridgeError(ErrorType.CommunicationError, (e) => e.details.grpc_code === "CANCELLED"),
    );
    for (const tag of ["batch-cancel-1", "batch-cancel-2"]) {
      await waitUntil(
        async () => (await events(tag)).some((e) => e.event === "aborted" && e.detail === "Cancelled"),
        `${tag} was aborted as Cancelled`,
        { tries: 250 },
      );
    }
  });

  it("refuses calls over a tool's max concurrent calls, and admits again when one ends", async () => {
    await client.executeTool("latch", { tag: "pre-open", open: "sf-open" });
    const first = client.executeTool("single_flight", { wait: "sf-hold" });
    // Until `first` is admitted, probes are admitted too and return at once; then one is refused.
    let refused: unknown;
    for (let i = 0; i < 200 && refused === undefined; i++) {
      try {
        await client.executeTool("single_flight", { wait: "sf-open" });
      } catch (error) {
        refused = error;
      }
    }
    isBridgeError(
      ErrorType.ConcurrencyLimitExceeded,
      (e) => e.details.max_concurrent_calls === "1" && e.details.tool === "single_flight",
    )(refused);
    await client.executeTool("latch", { tag: "release", open: "sf-hold" });
    assert.equal(await first, "done");
    assert.equal(await client.executeTool("single_flight", { wait: "sf-open" }), "done");
  });

  it("refuses calls over a tool's rate limit with a retry-after", async () => {
    for (let i = 0; i < 3; i++) assert.equal(await client.executeTool("rate_limited"), "ok");
    await assert.rejects(
      client.executeTool("rate_limited"),
      isBridgeError(ErrorType.RateLimitExceeded, (e) => {
        const retryAfter = Number(e.details.retry_after_ms);
        return retryAfter > 0 && retryAfter <= 60_000 && e.details.rate_limit_per_minute === "3";
      }),
    );
    // The spec says so, as Python's does.
    const specs = new Map((await client.listTools()).map((t) => [t.name, t]));
    assert.deepEqual(
      ["rate_limited", "single_flight", "add"].map((name) => [
        specs.get(name)?.maxConcurrentCalls,
        specs.get(name)?.rateLimitPerMinute,
      ]),
      [
        [0, 3],
        [1, 0],
        [0, 0],
      ],
    );
    // Other tools are not affected.
    assert.equal(await client.executeTool("add", { a: 1, b: 1 }), 2);
  });

  it("propagates the gRPC deadline to the tool, which is aborted when it passes", async () => {
    type Recorded = { event: string; detail: string }[];
    // A loaded machine may not get the call to its tool before a short deadline passes (then
    // nothing ran, so nothing was aborted), or may delay the request so long that the
    // client's cancel at its deadline reaches the host before the host's copy of the deadline
    // (a quarter of the call's time, at most 1 s, counts as the deadline: then the tool saw
    // Cancelled): each try gives it longer, at most three tries.
    const aborts: string[] = [];
    for (const ms of [1000, 3000, 10_000]) {
      const tag = `deadline-${ms}`;
      await assert.rejects(
        client.executeTool("slow", { ms: 60_000, tag }, { deadline: Date.now() + ms }),
        isBridgeError(ErrorType.CommunicationError, (e) => e.details.grpc_code === "DEADLINE_EXCEEDED"),
      );
      const events = (await client.executeTool("events", { tag })) as Recorded;
      if (!events.some((e) => e.event === "started")) continue;
      let aborted: string | undefined;
      await waitUntil(
        async () => {
          const seen = (await client.executeTool("events", { tag })) as Recorded;
          aborted = seen.find((e) => e.event === "aborted")?.detail;
          return aborted !== undefined;
        },
        "the tool saw its call end",
        { tries: 1000 },
      );
      aborts.push(`${ms} ms: ${aborted}`);
      if (aborted === "Timeout") break;
    }
    assert.ok(
      aborts.some((abort) => abort.endsWith(": Timeout")),
      `a started tool was never aborted with Timeout when its deadline passed (${aborts.join("; ") || "it never started"})`,
    );
    // Per-item timeouts of a batch are honoured too.
    const [timedOut, fine] = await client.executeBatch([
      { toolId: "slow", kwargs: { ms: 10_000, tag: "item-timeout" }, timeoutMs: 100 },
      { toolId: "add", kwargs: { a: 2, b: 2 } },
    ]);
    assert.equal(assertError(timedOut!, ErrorType.Timeout).details.timeout_ms, "100");
    assert.equal(fine, 4);
  });

  it("logs each call with the request id the client sent, from the message or x-request-id", async () => {
    await client.executeTool("add", { a: 1, b: 2 }, { requestId: "rid-message-42" });
    const stub = new pb.ToolBridgeClient(host.target, grpc.credentials.createInsecure());
    const metadata = new grpc.Metadata();
    metadata.set("x-request-id", "rid-header-43");
    const response = await new Promise<pb.ToolCallResponse>((resolve, reject) =>
      stub.executeTool(
        {
          sessionId: client.sessionId!,
          toolId: "fail",
          args: [],
          kwargs: { message: encodeValue("header test") },
          requestId: "",
          timeoutMs: 0,
        },
        metadata,
        (error, res) => (error ? reject(error) : resolve(res)),
      ),
    );
    stub.close();
    assert.equal(response.requestId, "rid-header-43");
    await client.executeBatch([{ toolId: "add", kwargs: { a: 0, b: 0 } }], { requestId: "rid-batch-44" });
    const lines = () =>
      host
        .stderr()
        .split("\n")
        .filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
    const find = (id: string, msg: string) => lines().find((l) => l.request_id === id && l.msg === msg);
    await waitUntil(
      () =>
        find("rid-message-42", "tool call succeeded") !== undefined &&
        find("rid-header-43", "tool call failed") !== undefined &&
        find("rid-batch-44", "batch completed") !== undefined,
      "the three calls are logged with their request ids",
      { tries: 250 },
    );
    assert.equal(find("rid-message-42", "tool call succeeded")?.tool, "add");
    assert.equal(find("rid-header-43", "tool call failed")?.error, "ToolExecutionError");
    assert.equal(find("rid-batch-44", "tool call succeeded")?.item, 0);
  });

  it("GetMetrics and the Prometheus endpoint reflect the calls just made", async () => {
    const metricsClient = new ToolBridgeClient(host.target);
    await metricsClient.initializeSession();
    await metricsClient.executeTool("echo", { value: 1 });
    await metricsClient.executeTool("echo", { value: 2 });
    await assert.rejects(metricsClient.executeTool("echo", { value: 1, extra: 2 }));
    await metricsClient.executeBatch([
      { toolId: "echo", kwargs: { value: 3 } },
      { toolId: "echo", kwargs: { value: 4 } },
    ]);
    for await (const _ of metricsClient.streamTool("count", { n: 3, tag: "metrics" })) {
    }
    const before = await metricsClient.getMetrics();
    const echo = before.tools.find((t) => t.tool === "echo");
    assert.equal(echo?.calls, 5);
    assert.equal(echo?.errors, 1);
    assert.deepEqual(echo?.errorsByType, { ValidationError: 1 });
    assert.ok((echo?.totalDurationMs ?? -1) >= 0);
    assert.ok(before.streamChunksTotal >= 3);
    assert.ok(before.batchesTotal >= 1);
    assert.ok(before.activeSessions >= 2, String(before.activeSessions));

    assert.ok(host.metricsUrl?.startsWith("http://127.0.0.1:"), host.metricsUrl);
    const text = await (await fetch(host.metricsUrl!)).text();
    const sample = (line: string) => {
      const match = text.split("\n").find((l) => l.startsWith(`${line} `));
      assert.ok(match, `no sample ${line} in /metrics`);
      return Number(match.slice(line.length + 1));
    };
    assert.equal(sample('toolbridge_tool_calls_total{tool="echo",protocol="grpc"}'), 5);
    assert.equal(
      sample('toolbridge_tool_errors_total{tool="echo",error_type="ValidationError",protocol="grpc"}'),
      1,
    );
    // Refused by validation, the failed call never ran: 4 observed durations.
    assert.equal(sample('toolbridge_tool_duration_seconds_count{tool="echo",protocol="grpc"}'), 4);
    assert.equal(sample('toolbridge_stream_chunks_total{tool="count"}'), before.streamChunksTotal);
    assert.equal(sample("toolbridge_batch_size_count"), before.batchesTotal);
    assert.equal(sample("toolbridge_active_sessions"), before.activeSessions);
    assert.equal((await fetch(host.metricsUrl!.replace("/metrics", "/other"))).status, 404);

    await metricsClient.executeTool("echo", { value: 5 });
    const after = await metricsClient.getMetrics();
    assert.equal(after.tools.find((t) => t.tool === "echo")?.calls, 6);
    assert.ok(after.collectedAt.getTime() >= before.collectedAt.getTime());
    await metricsClient.cleanup();
    metricsClient.close();
  });

  async function errorsOf(tool: string): Promise<number> {
    return (await client.getMetrics()).tools.find((t) => t.tool === tool)?.errors ?? 0;
  }
});
