/**
 * Tools for the integration tests of both languages (served by the real CLI:
 * `toolbridge serve --tools testdata/tools/test-tools.ts`). Tools that wait record
 * in `events` when and why they were aborted, so tests can check that the host
 * really stopped them; `events` itself is readable through the `events` tool.
 */
import { existsSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { defineTool, type ToolBridgeHost } from "@toolbridge/server";
import { z } from "zod";
import registerClusterTools from "./cluster-tools.js";
import registerLimitTools from "./limit-tools.js";
import registerOutputTools from "./output-tools.js";
import registerVariableTools from "./variable-tools.js";

const events: { tag: string; event: string; detail: string }[] = [];
const produced = new Map<string, number>();

function record(tag: string, event: string, detail = ""): void {
  events.push({ tag, event, detail });
}

/** Waits `ms`, or until the signal fires (recording it) — then rethrows the abort reason. */
async function waitOrAbort(ms: number, signal: AbortSignal, tag: string): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch (error) {
    const reason = signal.reason as { type?: string } | undefined;
    record(tag, "aborted", reason?.type ?? "unknown");
    throw error;
  }
}

export default function register(host: ToolBridgeHost): void {
  host.registerTool([
    defineTool({
      name: "echo",
      description: "Returns its argument unchanged.",
      parameters: z.object({ value: z.unknown().describe("Any value") }),
      cacheable: true,
      idempotent: true,
      handler: ({ value }) => value,
    }),
    defineTool({
      name: "add",
      description: "Adds two numbers.",
      parameters: z.object({
        a: z.number().describe("First addend"),
        b: z.number().describe("Second addend"),
      }),
      cacheable: true,
      idempotent: true,
      handler: ({ a, b }) => a + b,
    }),
    defineTool({
      name: "describe_args",
      description: "Returns the arguments it was called with, after defaults.",
      parameters: z.object({
        name: z.string().min(1).describe("Who"),
        count: z.int().min(1).default(1).describe("How many"),
        ratio: z.number().optional(),
        mode: z.enum(["fast", "slow"]).default("fast"),
        tags: z.array(z.string()).default([]),
      }),
      handler: (args) => args,
    }),
    defineTool({
      name: "fail",
      description: "Throws an Error with the given message.",
      parameters: z.object({ message: z.string() }),
      handler: ({ message }) => {
        throw new RangeError(message);
      },
    }),
    defineTool({
      name: "slow",
      description: "Waits ms milliseconds, honouring its abort signal, then returns 'done'.",
      parameters: z.object({ ms: z.int().min(0), tag: z.string().default("slow") }),
      timeoutMs: 60_000,
      handler: async ({ ms, tag }, ctx) => {
        record(tag, "started", ctx.requestId);
        await waitOrAbort(ms, ctx.signal, tag);
        record(tag, "finished");
        return "done";
      },
    }),
    defineTool({
      name: "slow_short_timeout",
      description: "Like slow, but declares a 200 ms timeout.",
      parameters: z.object({ ms: z.int().min(0), tag: z.string() }),
      timeoutMs: 200,
      handler: async ({ ms, tag }, ctx) => {
        await waitOrAbort(ms, ctx.signal, tag);
        return "done";
      },
    }),
    defineTool({
      name: "events",
      description: "Lists recorded tool events, optionally only those of one tag.",
      parameters: z.object({ tag: z.string().optional() }),
      handler: ({ tag }) => events.filter((e) => tag === undefined || e.tag === tag),
    }),
    defineTool({
      name: "produced",
      description: "How many chunks the stream with this tag has produced so far.",
      parameters: z.object({ tag: z.string() }),
      handler: ({ tag }) => produced.get(tag) ?? 0,
    }),
    defineTool({
      name: "count",
      description: "Streams {i} for i in 0..n-1, optionally with a delay and a bytes payload per chunk.",
      parameters: z.object({
        n: z.int().min(0),
        delay_ms: z.int().min(0).default(0),
        payload_bytes: z.int().min(0).default(0),
        tag: z.string().default("count"),
      }),
      streaming: true,
      timeoutMs: 60_000,
      handler: async function* ({ n, delay_ms, payload_bytes, tag }, ctx) {
        produced.set(tag, 0);
        try {
          for (let i = 0; i < n; i++) {
            if (delay_ms > 0) await waitOrAbort(delay_ms, ctx.signal, tag);
            produced.set(tag, i + 1);
            yield payload_bytes > 0 ? { i, payload: new Uint8Array(payload_bytes) } : { i };
          }
        } finally {
          if (ctx.signal.aborted) record(tag, "stream-closed", String(produced.get(tag)));
        }
      },
    }),
    defineTool({
      name: "fail_stream",
      description: "Streams `after` chunks, then throws.",
      parameters: z.object({ after: z.int().min(0), message: z.string().default("stream broke") }),
      streaming: true,
      handler: async function* ({ after, message }) {
        for (let i = 0; i < after; i++) yield i;
        throw new Error(message);
      },
    }),
    defineTool({
      name: "bytes",
      description: "Returns `size` zero bytes.",
      parameters: z.object({ size: z.int().min(0) }),
      handler: ({ size }) => new Uint8Array(size),
    }),
    defineTool({
      name: "wait_for_file",
      description:
        "Runs until the file at `path` exists, honouring its abort signal, then returns 'released': a call " +
        "a test ends from outside the host, e.g. while the host refuses every other call.",
      parameters: z.object({ path: z.string(), tag: z.string().default("wait_for_file") }),
      timeoutMs: 120_000,
      handler: async ({ path, tag }, ctx) => {
        record(tag, "started", ctx.requestId);
        while (!existsSync(path)) await waitOrAbort(20, ctx.signal, tag);
        return "released";
      },
    }),
    defineTool({
      name: "bad_result",
      description: "Returns a value the codec cannot encode (a function).",
      handler: () => ({ fn: () => 1 }),
    }),
  ]);
  registerClusterTools(host);
  registerLimitTools(host);
  registerOutputTools(host);
  registerVariableTools(host);
}
