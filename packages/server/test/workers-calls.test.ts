// TypeScript calling Python through the worker pool: every kind of value of the shared
// vectors, the error vocabulary, timeouts, streams and cancellation seen by the Python code.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { encodeValue } from "@toolbridge/core";
import { BridgeError, float64, WorkerPool } from "@toolbridge/server";
import { assertSame, native, vectors } from "../../../testdata/values/vectors.js";
import { waitUntil } from "./support/wait.js";
import { poolOptions } from "./support/workers.js";

function isBridgeError(type: string, check: (error: BridgeError) => boolean = () => true) {
  return (error: unknown) => error instanceof BridgeError && error.type === type && check(error);
}

describe("WorkerPool calls", () => {
  // One worker: the tests that read back what the Python side saw find it there.
  const pool = new WorkerPool(poolOptions());

  before(() => pool.start());
  after(() => pool.stop());

  it("describes the Python tools with schemas from their type hints and docstrings", () => {
    const add = pool.toolSpecs.find((spec) => spec.name === "add");
    assert.ok(add !== undefined);
    assert.equal(add.description, "Adds two integers.");
    const schema = JSON.parse(add.parametersSchema);
    assert.deepEqual(schema.required, ["a"]);
    assert.equal(schema.properties.a.type, "integer");
    assert.equal(schema.properties.a.description, "the first addend");
    assert.equal(schema.additionalProperties, false);
    assert.deepEqual(JSON.parse(add.outputSchema), { type: "integer" });
    assert.equal(pool.toolSpecs.find((spec) => spec.name === "count")?.type, 2);
  });

  for (const vector of vectors.valid) {
    it(`carries the value there and back: ${vector.name}`, async () => {
      for (const tool of ["echo", "echo_async"]) {
        const result = await pool.call(
          tool,
          { value: native(vector.value, true) },
          { decode: { maps: "map" } },
        );
        assertSame(result, native(vector.value, false));
      }
    });
  }

  it("binds positional arguments in signature order", async () => {
    assert.equal(await pool.call("add", {}, { args: [40, 2] }), 42);
    assert.equal(await pool.call("add", { b: 2 }, { args: [float64(40)] }), 42);
  });

  it("refuses a bad argument with ValidationError naming it, before the function runs", async () => {
    await assert.rejects(
      pool.call("add", { a: "forty" }),
      isBridgeError("ValidationError", (e) => e.details.field === "a"),
    );
    await assert.rejects(
      pool.call("add", { a: 1, c: 2 }),
      isBridgeError("ValidationError", (e) => e.details.field === "c"),
    );
  });

  it("reports an exception as ToolExecutionError with the exception's class", async () => {
    await assert.rejects(
      pool.call("fail", { message: "no such key" }),
      isBridgeError(
        "ToolExecutionError",
        (e) => e.details.exception === "KeyError" && e.message.includes("no such key"),
      ),
    );
    await assert.rejects(
      pool.call("nope"),
      isBridgeError("ToolNotFound", (e) => e.message.includes("add")),
    );
  });

  it("times a call out on the host's side, and the function sees the cancellation", async () => {
    await assert.rejects(
      pool.call("sleep", { ms: 60_000, marker: "timeout" }, { timeoutMs: 200 }),
      isBridgeError("Timeout", (e) => e.details.timeout_ms === "200"),
    );
    await assert.rejects(
      pool.call("sleep_sync", { ms: 60_000, marker: "timeout-sync" }, { timeoutMs: 200 }),
      isBridgeError("Timeout"),
    );
    // The tool's own timeout_ms (300) shortens the pool's default.
    await assert.rejects(
      pool.call("sleep_limited", { ms: 60_000, marker: "own-timeout" }),
      isBridgeError("Timeout", (e) => e.details.timeout_ms === "300" && e.details.backstop === undefined),
    );
    await waitUntil(
      async () => {
        const seen = (await pool.call("cancellations")) as string[];
        return ["sleep:timeout", "sleep_sync:timeout-sync", "sleep_limited:own-timeout"].every((marker) =>
          seen.includes(marker),
        );
      },
      "the functions saw their cancellations",
      { tries: 600, intervalMs: 50 },
    );
  });

  it("stops a call in the worker a moment after its deadline when the caller never cancels it", async () => {
    // callEncoded has no timer of its own: the caller owns the timeout. This one never
    // cancels, as a hung host would not, so only the worker's backstop can end the call.
    const deadline = Date.now() + 200;
    await assert.rejects(
      pool.callEncoded(
        "sleep",
        [],
        { ms: encodeValue(60_000), marker: encodeValue("backstop") },
        { deadline },
      ),
      isBridgeError(
        "Timeout",
        (e) =>
          e.details.backstop === "true" &&
          Number(e.details.timeout_ms) <= 200 &&
          /the worker stopped it/.test(e.message),
      ),
    );
    assert.ok(((await pool.call("cancellations")) as string[]).includes("sleep:backstop"));
  });

  it("cancels a call when its signal aborts: asyncio cancellation for async, the event for sync", async () => {
    for (const tool of ["sleep", "sleep_sync"]) {
      const controller = new AbortController();
      const call = pool.call(tool, { ms: 60_000, marker: "abort" }, { signal: controller.signal });
      await waitUntil(
        async () => ((await pool.call("started")) as string[]).includes(`${tool}:abort`),
        `${tool} started in the worker`,
      );
      controller.abort();
      await assert.rejects(call, isBridgeError("Cancelled"));
    }
    let seen: string[] = [];
    await waitUntil(
      async () => {
        seen = ((await pool.call("cancellations")) as string[]).filter((s) => s.endsWith(":abort"));
        return seen.length >= 2;
      },
      "both functions saw their cancellation",
      { tries: 100, explain: () => seen.join(", ") },
    );
    assert.deepEqual(seen.sort(), ["sleep:abort", "sleep_sync:abort"]);
  });

  it("streams a generator's chunks", async () => {
    for (const tool of ["count", "count_sync"]) {
      const chunks: unknown[] = [];
      for await (const chunk of pool.streamCall(tool, { n: 5 })) chunks.push(chunk);
      assert.deepEqual(chunks, [0, 1, 2, 3, 4]);
    }
    const single: unknown[] = [];
    for await (const chunk of pool.streamCall("add", { a: 1, b: 1 })) single.push(chunk);
    assert.deepEqual(single, [2]);
  });

  it("ends a stream at its idle timeout, or at its total budget while it keeps producing", async () => {
    const drain = async (
      kwargs: Record<string, unknown>,
      options: { timeoutMs?: number; idleTimeoutMs?: number },
    ) => {
      let chunks = 0;
      try {
        for await (const _ of pool.streamCall("count", kwargs, options)) chunks++;
      } catch (error) {
        return { chunks, error };
      }
      return { chunks, error: undefined };
    };
    // One chunk, then a 30 s pause: only the 200 ms idle timeout can end it.
    const stalled = await drain(
      { n: 2, delay_ms: 30_000, marker: "idle" },
      { idleTimeoutMs: 200, timeoutMs: 60_000 },
    );
    assert.equal(stalled.chunks, 1);
    assert.ok(
      isBridgeError(
        "Timeout",
        (e) => e.details.timeout === "idle" && e.details.timeout_ms === "200",
      )(stalled.error),
      String(stalled.error),
    );
    // A chunk every 5 ms is never idle for 1 s; the 1.5 s budget ends it.
    const steady = await drain(
      { n: 1_000_000, delay_ms: 5, marker: "total" },
      { idleTimeoutMs: 1_000, timeoutMs: 1_500 },
    );
    assert.ok(steady.chunks > 1);
    assert.ok(
      isBridgeError(
        "Timeout",
        (e) => e.details.timeout === "total" && e.details.timeout_ms === "1500",
      )(steady.error),
      String(steady.error),
    );
  });

  it("closes the Python generator when the stream is cancelled", async () => {
    for (const tool of ["count", "count_sync"]) {
      const controller = new AbortController();
      const received: unknown[] = [];
      await assert.rejects(async () => {
        for await (const chunk of pool.streamCall(
          tool,
          { n: 1000, delay_ms: 20, marker: "stream" },
          { signal: controller.signal },
        )) {
          received.push(chunk);
          if (received.length === 3) controller.abort();
        }
      }, isBridgeError("Cancelled"));
      assert.deepEqual(received, [0, 1, 2]);
      // Leaving the loop early (break) cancels too.
      for await (const chunk of pool.streamCall(tool, { n: 1000, delay_ms: 20, marker: "break" })) {
        if (chunk === 1) break;
      }
    }
    let seen: string[] = [];
    for (let i = 0; i < 250 && seen.length < 4; i++) {
      // A sync generator closes in its own thread: a loaded machine needs the time.
      seen = ((await pool.call("cancellations")) as string[]).filter((s) =>
        /^count(_sync)?:(stream|break)$/.test(s),
      );
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.deepEqual(seen.sort(), ["count:break", "count:stream", "count_sync:break", "count_sync:stream"]);
  });

  it("reports an error chunk for a failing stream and InvalidValue for a value the codec refuses", async () => {
    await assert.rejects(
      async () => {
        for await (const _ of pool.streamCall("count", { n: -1, delay_ms: "x" })) {
          // no chunks
        }
      },
      isBridgeError("ValidationError", (e) => e.details.field === "delay_ms"),
    );
    await assert.rejects(pool.call("echo", { value: () => 1 }), isBridgeError("InvalidValue"));
  });
});
