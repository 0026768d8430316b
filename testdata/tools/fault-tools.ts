/**
 * Tools that misbehave the way real tools do, for the fault-containment tests: an
 * exception thrown from a timer, a rejected promise nobody awaits, both after the call
 * completed or failed, and a tool that ignores its abort signal and runs past its timeout.
 */
import { existsSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { defineTool, type ToolBridgeHost } from "@toolbridge/server";
import { z } from "zod";

/** Waits until the call is aborted (the fault fails it) or, as a backstop, a minute passes. */
function untilAborted(signal: AbortSignal): Promise<void> {
  return sleep(60_000, undefined, { signal }).catch(() => {});
}

export const tools = [
  defineTool({
    name: "throw_from_timer",
    description: "Throws from a timer while its call waits.",
    parameters: z.object({ message: z.string().default("boom from a timer") }),
    handler: async ({ message }, ctx) => {
      setTimeout(() => {
        throw new Error(message);
      }, 10);
      await untilAborted(ctx.signal);
      return "not reached";
    },
  }),
  defineTool({
    name: "leak_rejection",
    description: "Leaves a rejected promise unhandled while its call waits.",
    parameters: z.object({ message: z.string().default("leaked rejection") }),
    handler: async ({ message }, ctx) => {
      void Promise.reject(new TypeError(message));
      await untilAborted(ctx.signal);
      return "not reached";
    },
  }),
  defineTool({
    name: "throw_after_return",
    description: "Returns at once, then throws from a timer and leaks a rejection.",
    handler: () => {
      setTimeout(() => {
        throw new Error("thrown after the call ended");
      }, 10);
      setTimeout(() => {
        void Promise.reject(new Error("rejected after the call ended"));
      }, 20);
      return "returned";
    },
  }),
  defineTool({
    name: "throw_after_failing",
    description: "Fails, then throws from a timer after its call ended.",
    handler: () => {
      setTimeout(() => {
        throw new Error("thrown after the call failed");
      }, 10);
      throw new Error("failed first");
    },
  }),
  defineTool({
    name: "stubborn",
    description: "Ignores its abort signal: runs until the file at `path` exists, past its 100 ms timeout.",
    parameters: z.object({ path: z.string() }),
    timeoutMs: 100,
    maxConcurrentCalls: 1,
    handler: async ({ path }) => {
      while (!existsSync(path)) await sleep(10);
      return "settled";
    },
  }),
];

export default function register(host: ToolBridgeHost): void {
  host.registerTool(tools);
}
