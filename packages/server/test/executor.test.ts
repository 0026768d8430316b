// ToolInvocation on its own: the paths that skip work for plain synchronous tools must still
// honour aborts, timeouts and the signal a tool reads late.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BridgeError, defineTool, ErrorType } from "@toolbridge/server";
import type { Tool } from "../src/tools/define.js";
import { ToolInvocation } from "../src/tools/executor.js";

function invocation(tool: Tool, timeoutMs = 1000, idleTimeoutMs = 1000): ToolInvocation {
  return new ToolInvocation(
    tool,
    {},
    { sessionId: "s", requestId: "r", timeoutMs, idleTimeoutMs, exposeStackTraces: false },
  );
}

function failsWith(type: string, pattern: RegExp) {
  return (error: unknown) =>
    error instanceof BridgeError && error.type === type && pattern.test(error.message);
}

describe("ToolInvocation", () => {
  it("returns a synchronous tool's value and turns what it throws into ToolExecutionError", async () => {
    const ok = defineTool({
      name: "sync",
      description: "",
      handler: (_, ctx) => `${ctx.toolName}:${ctx.requestId}`,
    });
    assert.equal(await invocation(ok).run(), "sync:r");
    const bad = defineTool({
      name: "throws",
      description: "",
      handler: () => {
        throw new RangeError("out of range");
      },
    });
    await assert.rejects(invocation(bad).run(), failsWith(ErrorType.ToolExecutionError, /out of range/));
  });

  it("does not start a tool whose call was aborted before it ran", async () => {
    let started = false;
    const tool = defineTool({
      name: "never",
      description: "",
      handler: () => {
        started = true;
        return 1;
      },
    });
    const call = invocation(tool);
    call.abort(new BridgeError(ErrorType.Cancelled, "client went away"));
    await assert.rejects(call.run(), failsWith(ErrorType.Cancelled, /client went away/));
    assert.equal(started, false);
  });

  it("ends the wait on an async tool at once when aborted, and the tool's signal fires with the reason", async () => {
    let seen: unknown;
    const tool = defineTool({
      name: "waits",
      description: "",
      handler: (_, ctx) =>
        new Promise((resolve) => {
          ctx.signal.addEventListener("abort", () => {
            seen = ctx.signal.reason;
            // Settling late must not matter: the call already failed with the abort reason.
            setTimeout(() => resolve("late"), 5);
          });
        }),
    });
    const call = invocation(tool);
    const running = call.run();
    const reason = new BridgeError(ErrorType.Cancelled, "stop");
    setTimeout(() => call.abort(reason), 5);
    await assert.rejects(running, (error) => error === reason);
    assert.equal(seen, reason);
  });

  it("times out an async tool and aborts its signal", async () => {
    let signal: AbortSignal | undefined;
    const tool = defineTool({
      name: "slow",
      description: "",
      handler: (_, ctx) => {
        signal = ctx.signal;
        return new Promise(() => {});
      },
    });
    await assert.rejects(
      invocation(tool, 20).run(),
      failsWith(ErrorType.Timeout, /did not finish within 20 ms/),
    );
    assert.equal(signal?.aborted, true);
  });

  it("gives a tool that first reads its signal after the abort an already aborted signal", async () => {
    const call = invocation(defineTool({ name: "late", description: "", handler: () => 1 }));
    const reason = new BridgeError(ErrorType.Cancelled, "gone");
    call.abort(reason);
    call.abort(new BridgeError(ErrorType.Timeout, "ignored: the first reason stands"));
    assert.equal(call.signal.aborted, true);
    assert.equal(call.signal.reason, reason);
  });

  it("times out a stream that produces no chunk in time", async () => {
    const tool = defineTool({
      name: "stalls",
      description: "",
      streaming: true,
      async *handler() {
        yield 1;
        await new Promise(() => {});
      },
    });
    const chunks = invocation(tool, 60_000, 20).stream();
    assert.deepEqual(await chunks.next(), { done: false, value: 1 });
    await assert.rejects(chunks.next(), (error: unknown) => {
      assert.ok(failsWith(ErrorType.Timeout, /produced no chunk within 20 ms/)(error));
      assert.deepEqual((error as BridgeError).details, { timeout: "idle", timeout_ms: "20" });
      return true;
    });
    chunks.close();
  });

  it("ends a stream at its total budget even while it waits for a slow reader", async () => {
    let signal: AbortSignal | undefined;
    const tool = defineTool({
      name: "steady",
      description: "",
      streaming: true,
      async *handler(_, ctx) {
        signal = ctx.signal;
        for (let i = 0; ; i++) yield i;
      },
    });
    const call = invocation(tool, 30, 1000);
    const chunks = call.stream();
    assert.deepEqual(await chunks.next(), { done: false, value: 0 });
    // A reader that never makes room: only the total budget can end this wait.
    await assert.rejects(call.waitFor(new Promise(() => {})), (error: unknown) => {
      assert.ok(failsWith(ErrorType.Timeout, /total budget of 30 ms/)(error));
      assert.deepEqual((error as BridgeError).details, { timeout: "total", timeout_ms: "30" });
      return true;
    });
    assert.equal(signal?.aborted, true);
    await assert.rejects(chunks.next(), failsWith(ErrorType.Timeout, /total budget/));
    chunks.close();
  });

  it("tells the tool its deadline, from when its timeout starts counting; none without a timeout", async () => {
    const tool = defineTool({ name: "deadline", description: "", handler: (_, ctx) => ctx.deadline });
    const before = Date.now();
    const deadline = (await invocation(tool, 5000).run()) as number;
    assert.ok(deadline >= before + 5000 && deadline <= Date.now() + 5000, String(deadline - before));
    assert.equal(await invocation(tool, 0).run(), Number.POSITIVE_INFINITY);
    const stream = defineTool({
      name: "stream_deadline",
      description: "",
      streaming: true,
      async *handler(_, ctx) {
        yield ctx.deadline;
      },
    });
    const unbounded = invocation(stream, 0, 0).stream();
    assert.deepEqual(await unbounded.next(), { done: false, value: Number.POSITIVE_INFINITY });
    unbounded.close();
  });

  it("runs without a timer when its timeouts are 0 (no limit)", async () => {
    const tool = defineTool({
      name: "slow_enough",
      description: "",
      handler: () => new Promise((resolve) => setTimeout(() => resolve("done"), 20)),
    });
    assert.equal(await invocation(tool, 0, 0).run(), "done");
  });
});
