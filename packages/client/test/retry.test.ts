// The client's retry policy (executeWithRetry): the decision table on its own, then
// against real hosts, including one that goes away and comes back on the same port.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import {
  BridgeError,
  DEFAULT_BACKOFF,
  ErrorType,
  type RetryEvent,
  type SessionRecreated,
  ToolBridgeClient,
} from "@toolbridge/client";
import { AnswerCutter } from "../../server/test/support/answer-cutter.js";
import { fails } from "../../server/test/support/assertions.js";
import { type HostProcess, startHost } from "../../server/test/support/host-process.js";
import { retryDelay } from "../src/retry.js";

const transport = (code: grpc.status) =>
  new BridgeError(ErrorType.CommunicationError, grpc.status[code] ?? "", { grpcCode: code });

// Reconnect quickly after the host comes back; the default channel backoff starts at 1 s.
const FAST_RECONNECT = {
  channelOptions: { "grpc.initial_reconnect_backoff_ms": 50, "grpc.max_reconnect_backoff_ms": 200 },
};
const FAST_BACKOFF = { initialMs: 20, maxMs: 100 };

describe("retry policy", () => {
  const policy = DEFAULT_BACKOFF;

  it("retries UNAVAILABLE and DEADLINE_EXCEEDED with exponential backoff", () => {
    for (const code of [grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED]) {
      assert.deepEqual(
        [0, 1, 2].map((attempt) => retryDelay(transport(code), attempt, policy)),
        [1000, 2000, 4000],
      );
    }
    assert.equal(retryDelay(transport(grpc.status.UNAVAILABLE), 20, policy), policy.maxMs);
    for (const code of [grpc.status.INTERNAL, grpc.status.CANCELLED, grpc.status.RESOURCE_EXHAUSTED]) {
      assert.equal(retryDelay(transport(code), 0, policy), undefined);
    }
  });

  it("retries RateLimitExceeded after the host's retry-after, else a longer backoff", () => {
    const hinted = new BridgeError(ErrorType.RateLimitExceeded, "", { details: { retry_after_ms: "1234" } });
    assert.equal(retryDelay(hinted, 0, policy), 1234);
    const bare = new BridgeError(ErrorType.RateLimitExceeded, "");
    assert.deepEqual(
      [0, 1].map((attempt) => retryDelay(bare, attempt, policy)),
      [10_000, 20_000],
    );
    const busy = new BridgeError(ErrorType.ConcurrencyLimitExceeded, "");
    assert.equal(retryDelay(busy, 1, policy), 2000);
  });

  it("never retries tool logic and request errors", () => {
    for (const type of [
      ErrorType.ToolExecutionError,
      ErrorType.ValidationError,
      ErrorType.ToolNotFound,
      ErrorType.Timeout,
      ErrorType.SessionNotFound,
    ]) {
      assert.equal(retryDelay(new BridgeError(type, ""), 0, policy), undefined, type);
    }
    assert.equal(retryDelay(new Error("plain"), 0, policy), undefined);
  });
});

describe("executeWithRetry against the real host", () => {
  let host: HostProcess;
  let client: ToolBridgeClient;

  before(async () => {
    host = await startHost();
    client = new ToolBridgeClient(host.target);
    await client.initializeSession();
  });
  after(async () => {
    client.close();
    await host.stop();
  });

  it("waits the host's retry-after on RateLimitExceeded, then succeeds", async () => {
    const retries: RetryEvent[] = [];
    const result = await client.executeWithRetry(
      "flaky",
      { key: "rl-hint", failures: 2, retry_after_ms: 30 },
      // A 60 s fallback would time the test out: only the hint can be used.
      { backoff: { rateLimitMs: 60_000 }, onRetry: (event) => retries.push(event) },
    );
    assert.equal(result, 3);
    assert.deepEqual(
      retries.map((r) => [r.attempt, r.delayMs, r.error.type]),
      [
        [1, 30, ErrorType.RateLimitExceeded],
        [2, 30, ErrorType.RateLimitExceeded],
      ],
    );
  });

  it("gives up after maxAttempts with the last error", async () => {
    await assert.rejects(
      client.executeWithRetry(
        "flaky",
        { key: "rl-exhaust", failures: 5, retry_after_ms: 5 },
        { maxAttempts: 2 },
      ),
      fails(ErrorType.RateLimitExceeded, (e) => e.message.includes("call 2 refused")),
    );
    assert.equal(await client.executeTool("call_count", { key: "rl-exhaust" }), 2);
  });

  it("does not retry a tool error", async () => {
    const retries: RetryEvent[] = [];
    await assert.rejects(
      client.executeWithRetry(
        "flaky",
        { key: "logic", failures: 1, mode: "error" },
        { onRetry: (event) => retries.push(event) },
      ),
      fails(ErrorType.ToolExecutionError, (e) => e.message.includes("flaky failure 1")),
    );
    assert.deepEqual(retries, []);
    assert.equal(await client.executeTool("call_count", { key: "logic" }), 1);
  });
});

describe("executeWithRetry across a host restart", () => {
  it("keeps going when the host comes back on the same port, re-creating the session", async () => {
    let host = await startHost();
    const port = Number(host.target.split(":").pop());
    const client = new ToolBridgeClient(host.target, FAST_RECONNECT);
    try {
      const { sessionId } = await client.initializeSession("retry-restart", { owner: "retry-test" });
      assert.equal(await client.executeWithRetry("add", { a: 1, b: 1 }), 2);
      assert.equal(await host.stop(), 0);

      // Any tool is retried (a repeated request id is a replay), until the attempts run out.
      const down: RetryEvent[] = [];
      await assert.rejects(
        client.executeWithRetry(
          "describe_args",
          { name: "x" },
          { backoff: FAST_BACKOFF, onRetry: (e) => down.push(e) },
        ),
        fails(ErrorType.CommunicationError, (e) => e.details.grpc_code === "UNAVAILABLE"),
      );
      assert.deepEqual(
        down.map((e) => e.attempt),
        [1, 2],
      );

      let restarted: Promise<HostProcess> | undefined;
      const retries: RetryEvent[] = [];
      const recreated: SessionRecreated[] = [];
      const result = await client.executeWithRetry(
        "add",
        { a: 20, b: 22 },
        {
          maxAttempts: 100,
          backoff: FAST_BACKOFF,
          onSessionRecreated: (event) => recreated.push(event),
          onRetry: (event) => {
            retries.push(event);
            // Bring the host back only once the client has seen it gone.
            restarted ??= startHost({ port });
          },
        },
      );
      assert.equal(result, 42);
      assert.ok(restarted, "the call never failed while the host was down");
      host = await restarted;
      assert.equal(retries[0]?.error.details.grpc_code, "UNAVAILABLE");
      // The new host had no such session: the client re-created it under the same id, and said so.
      assert.deepEqual(recreated, [{ sessionId }]);
      assert.equal(client.sessionId, sessionId);
      assert.equal((await client.sessionInfo()).metadata.owner, "retry-test");
    } finally {
      client.close();
      await host.stop();
    }
  });

  it("recovers a cold client, telling it the session came back empty", async () => {
    let host = await startHost();
    const port = Number(host.target.split(":").pop());
    const warm = new ToolBridgeClient(host.target);
    const { sessionId } = await warm.initializeSession("retry-cold");
    warm.close();
    assert.equal(await host.stop(), 0);
    host = await startHost({ port });
    // A new process attaching by id alone: no spec lookup, no earlier transport failure.
    const cold = new ToolBridgeClient(host.target, FAST_RECONNECT);
    try {
      await cold.initializeSession(sessionId);
      await cold.cleanup();
      await cold.initializeSession(sessionId);
      await host.stop();
      host = await startHost({ port });
      await assert.rejects(
        cold.executeWithRetry("add", { a: 1, b: 2 }, { backoff: FAST_BACKOFF }),
        fails(ErrorType.SessionNotFound, (e) => e.details.recreated === "true"),
      );
      // The session exists again (empty): the next call goes through.
      assert.equal(await cold.executeWithRetry("add", { a: 1, b: 2 }), 3);

      await cold.cleanup();
      await cold.initializeSession(sessionId);
      await host.stop();
      host = await startHost({ port });
      const told: SessionRecreated[] = [];
      const result = await cold.executeWithRetry(
        "add",
        { a: 2, b: 2 },
        { backoff: FAST_BACKOFF, maxAttempts: 100, onSessionRecreated: (e) => told.push(e) },
      );
      assert.equal(result, 4);
      assert.deepEqual(told, [{ sessionId }]);
    } finally {
      cold.close();
      await host.stop();
    }
  });

  it("retries a tool with a side effect whose answer was lost: the host runs it once", async () => {
    const host = await startHost();
    // The client reaches the host through a proxy that loses the next answer: the call ran,
    // the host sent its result, and the connection dropped before the client read it.
    const proxy = await AnswerCutter.start(host.target);
    const client = new ToolBridgeClient(proxy.target, FAST_RECONNECT);
    try {
      await client.initializeSession();
      const key = `once-${Date.now()}`;
      const lost = proxy.loseNextAnswer();
      const retries: RetryEvent[] = [];
      const result = await client.executeWithRetry(
        "bump",
        { key },
        { requestId: `req-${key}`, backoff: FAST_BACKOFF, onRetry: (event) => retries.push(event) },
      );
      await lost;
      assert.ok(proxy.cuts > 0, "no connection was cut");
      // The first attempt failed with the dropped connection; the second got the recorded answer.
      assert.deepEqual(
        retries.map((e) => [e.attempt, e.error.details.grpc_code]),
        [[1, "UNAVAILABLE"]],
      );
      assert.deepEqual(result, { count: 1, node: "local" });
      assert.equal(await client.executeTool("bump_starts", { key }), 1);
      assert.equal(await client.executeTool("bumps", { key }), 1);
    } finally {
      client.close();
      await proxy.close();
      await host.stop();
    }
  });

  it("treats an in-band Unavailable as retriable unless the host says it is not", () => {
    const policy = DEFAULT_BACKOFF;
    const workerDied = new BridgeError(ErrorType.Unavailable, "", { details: { retriable: "true" } });
    const redisDown = new BridgeError(ErrorType.Unavailable, "", { details: { store: "redis" } });
    const nodeGone = new BridgeError(ErrorType.Unavailable, "", { details: { retriable: "false" } });
    assert.equal(retryDelay(workerDied, 1, policy), 2000);
    assert.equal(retryDelay(redisDown, 0, policy), 1000);
    assert.equal(retryDelay(nodeGone, 0, policy), undefined);
  });
});
