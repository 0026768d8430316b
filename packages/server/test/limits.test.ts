// Per-tool limits on their own: declaration checks, the sliding rate window, concurrency permits.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pb } from "@toolbridge/core";
import { BridgeError, DEFAULT_CONFIG, defineTool, ErrorType } from "@toolbridge/server";
import { ToolLimiter } from "../src/tools/limits.js";

function refused(type: string, check: (e: BridgeError) => boolean = () => true) {
  return (error: unknown) => error instanceof BridgeError && error.type === type && check(error);
}

describe("tool limits", () => {
  it("are declared with defineTool and reported in the spec", () => {
    const tool = defineTool({
      name: "limited",
      description: "",
      maxConcurrentCalls: 2,
      rateLimitPerMinute: 30,
      timeoutMs: 500,
      handler: () => 1,
    });
    assert.deepEqual(tool.spec(pb.ToolScope.TOOL_SCOPE_GLOBAL).limits, {
      timeoutMs: 500,
      idleTimeoutMs: 0,
      maxConcurrentCalls: 2,
      rateLimitPerMinute: 30,
    });
    const plain = defineTool({ name: "plain", description: "", handler: () => 1 });
    assert.deepEqual(plain.limits, { maxConcurrentCalls: 0, rateLimitPerMinute: 0 });
    const stream = defineTool({
      name: "stream",
      description: "",
      streaming: true,
      timeoutMs: 60_000,
      idleTimeoutMs: 2_000,
      async *handler() {},
    });
    assert.deepEqual(stream.spec(pb.ToolScope.TOOL_SCOPE_GLOBAL).limits, {
      timeoutMs: 60_000,
      idleTimeoutMs: 2_000,
      maxConcurrentCalls: 0,
      rateLimitPerMinute: 0,
    });
  });

  it("refuse bad declarations, naming the option", () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      assert.throws(
        () =>
          defineTool({
            name: "x",
            description: "",
            streaming: true,
            idleTimeoutMs: bad,
            async *handler() {},
          }),
        /idleTimeoutMs must be a positive integer/,
      );
      assert.throws(
        () => defineTool({ name: "x", description: "", maxConcurrentCalls: bad, handler: () => 1 }),
        /maxConcurrentCalls must be an integer/,
      );
      assert.throws(
        () => defineTool({ name: "x", description: "", rateLimitPerMinute: bad, handler: () => 1 }),
        /rateLimitPerMinute must be an integer/,
      );
    }
  });

  it("rate limit: a sliding 60 s window with an exact retry-after", () => {
    const limiter = new ToolLimiter("t", { maxConcurrentCalls: 0, rateLimitPerMinute: 3 });
    limiter.acquire(1000);
    limiter.acquire(2000);
    limiter.acquire(30_000);
    assert.throws(
      () => limiter.acquire(40_000),
      refused(ErrorType.RateLimitExceeded, (e) => e.details.retry_after_ms === "21000"),
    );
    // The refusal used no slot: at 61 s the first start has left the window, one slot frees.
    limiter.acquire(61_000);
    assert.throws(
      () => limiter.acquire(61_500),
      refused(ErrorType.RateLimitExceeded, (e) => e.details.retry_after_ms === "500"),
    );
    limiter.acquire(62_000);
    // Long after, the whole budget is back.
    for (let i = 0; i < 3; i++) limiter.acquire(500_000);
  });

  it("concurrency: permits are returned once, however often release is called", () => {
    const limiter = new ToolLimiter("t", { maxConcurrentCalls: 2, rateLimitPerMinute: 0 });
    const first = limiter.acquire();
    limiter.acquire();
    assert.throws(() => limiter.acquire(), refused(ErrorType.ConcurrencyLimitExceeded));
    first.release();
    first.release();
    assert.equal(limiter.active, 1);
    limiter.acquire();
    assert.throws(() => limiter.acquire(), refused(ErrorType.ConcurrencyLimitExceeded));
  });

  it("batch and metrics settings have documented defaults", () => {
    assert.equal(DEFAULT_CONFIG.maxBatchSize, 100);
    assert.equal(DEFAULT_CONFIG.batchMaxParallel, 10);
    assert.equal(DEFAULT_CONFIG.metricsPort, undefined);
    assert.equal(DEFAULT_CONFIG.metricsHost, "127.0.0.1");
  });
});
