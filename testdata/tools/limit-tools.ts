/**
 * Test tools for batches, limits and retries (registered by test-tools.ts). They let
 * tests observe ordering and concurrency from inside the host instead of timing it:
 * latches order completions, probes record how many calls of a tag ran at once.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { BridgeError, defineTool, ErrorType, type ToolBridgeHost } from "@toolbridge/server";
import { z } from "zod";

const latches = new Map<string, { opened: Promise<void>; open: () => void }>();
const active = new Map<string, number>();
const maxActive = new Map<string, number>();
const calls = new Map<string, number>();
let finished = 0;

function latch(key: string) {
  let entry = latches.get(key);
  if (entry === undefined) {
    let open = () => {};
    const opened = new Promise<void>((resolve) => {
      open = resolve;
    });
    entry = { opened, open };
    latches.set(key, entry);
  }
  return entry;
}

/** Resolves when the latch opens; rejects with the abort reason if the call is aborted first. */
function waitLatch(key: string, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    latch(key).opened.then(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    });
  });
}

function countCall(key: string): number {
  const n = (calls.get(key) ?? 0) + 1;
  calls.set(key, n);
  return n;
}

export default function registerLimitTools(host: ToolBridgeHost): void {
  host.registerTool([
    defineTool({
      name: "latch",
      description:
        "Waits for latch `wait` (if given), then opens latch `open` (if given); returns its tag and " +
        "its place in the host-wide order of finished latch calls.",
      parameters: z.object({ tag: z.string(), wait: z.string().optional(), open: z.string().optional() }),
      timeoutMs: 10_000,
      handler: async ({ tag, wait, open }, ctx) => {
        if (wait !== undefined) await waitLatch(wait, ctx.signal);
        if (open !== undefined) latch(open).open();
        finished++;
        return { tag, finished };
      },
    }),
    defineTool({
      name: "probe",
      description:
        "Counts itself as running under `tag`, records the most calls of the tag seen running at once, " +
        "and holds until `until_active` calls of the tag have run together once (or `max_wait_ms` passes).",
      parameters: z.object({
        tag: z.string(),
        until_active: z.int().min(1).default(1),
        max_wait_ms: z.int().min(0).max(10_000).default(2000),
      }),
      handler: async ({ tag, until_active, max_wait_ms }, ctx) => {
        const now = (active.get(tag) ?? 0) + 1;
        active.set(tag, now);
        maxActive.set(tag, Math.max(maxActive.get(tag) ?? 0, now));
        try {
          // Bounded poll: the tool needs to see the others arrive, not to measure time.
          // Once the tag reached the target, later calls need not wait: the tail of a batch
          // may have fewer items left than the target.
          for (
            let waited = 0;
            (maxActive.get(tag) ?? 0) < until_active && waited < max_wait_ms;
            waited += 5
          ) {
            await sleep(5, undefined, { signal: ctx.signal });
          }
        } finally {
          active.set(tag, (active.get(tag) ?? 1) - 1);
        }
        return tag;
      },
    }),
    defineTool({
      name: "probe_max",
      description: "The most calls of `tag` the probe tool saw running at once.",
      parameters: z.object({ tag: z.string() }),
      handler: ({ tag }) => maxActive.get(tag) ?? 0,
    }),
    defineTool({
      name: "single_flight",
      description: "Allows one call at a time; waits for latch `wait`.",
      parameters: z.object({ wait: z.string() }),
      maxConcurrentCalls: 1,
      timeoutMs: 10_000,
      handler: async ({ wait }, ctx) => {
        await waitLatch(wait, ctx.signal);
        return "done";
      },
    }),
    defineTool({
      name: "rate_limited",
      description: "Allows 3 calls per minute.",
      rateLimitPerMinute: 3,
      handler: () => "ok",
    }),
    defineTool({
      name: "flaky",
      description:
        "Fails the first `failures` calls of `key`: with RateLimitExceeded (retry after `retry_after_ms`) " +
        "or a plain tool error; then returns how many calls it took.",
      parameters: z.object({
        key: z.string(),
        failures: z.int().min(0),
        mode: z.enum(["rate_limit", "error"]).default("rate_limit"),
        retry_after_ms: z.int().min(1).default(20),
      }),
      idempotent: true,
      handler: ({ key, failures, mode, retry_after_ms }) => {
        const n = countCall(key);
        if (n > failures) return n;
        if (mode === "error") throw new Error(`flaky failure ${n} of ${failures}`);
        throw new BridgeError(ErrorType.RateLimitExceeded, `flaky: call ${n} refused`, {
          details: { retry_after_ms: String(retry_after_ms) },
        });
      },
    }),
    defineTool({
      name: "call_count",
      description: "How many times flaky was called with `key`.",
      parameters: z.object({ key: z.string() }),
      handler: ({ key }) => calls.get(key) ?? 0,
    }),
  ]);
}
