/**
 * Test tools for replay and for several nodes (registered by test-tools.ts): a counter
 * with a side effect, the node that served a call, and a tool that registers a session
 * tool on the node it runs on.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { defineTool, type ToolBridgeHost } from "@toolbridge/server";
import { z } from "zod";

const counters = new Map<string, number>();
const starts = new Map<string, number>();

export default function registerClusterTools(host: ToolBridgeHost): void {
  const node = () => host.nodeId ?? "local";
  host.registerTool([
    defineTool({
      name: "bump",
      description:
        "Waits `ms`, then adds one to this node's counter `key` (its side effect) and returns the new " +
        "count and the node; with `fail` it throws after counting.",
      parameters: z.object({
        key: z.string(),
        ms: z.int().min(0).max(10_000).default(0),
        fail: z.boolean().default(false),
      }),
      timeoutMs: 20_000,
      handler: async ({ key, ms, fail }, ctx) => {
        starts.set(key, (starts.get(key) ?? 0) + 1);
        if (ms > 0) await sleep(ms, undefined, { signal: ctx.signal });
        const count = (counters.get(key) ?? 0) + 1;
        counters.set(key, count);
        if (fail) throw new Error(`bump ${key} failed after counting (${count})`);
        return { count, node: node() };
      },
    }),
    defineTool({
      name: "bumps",
      description: "This node's counter `key`: how many times bump ran for it here.",
      parameters: z.object({ key: z.string() }),
      handler: ({ key }) => counters.get(key) ?? 0,
    }),
    defineTool({
      name: "bump_starts",
      description: "How many bump calls for `key` started on this node (counted before their wait).",
      parameters: z.object({ key: z.string() }),
      handler: ({ key }) => starts.get(key) ?? 0,
    }),
    defineTool({
      name: "node_info",
      description: "The node serving this call: its name among the hosts sharing the store, and its pid.",
      handler: () => ({ node: node(), pid: process.pid }),
    }),
    defineTool({
      name: "register_session_echo",
      description:
        "Registers, for this session and on this node only, the tool `name` (returns its `value` and the " +
        "node that ran it), `<name>_stream` (streams `count` such results) and `<name>_hold` (streams one, " +
        "then runs until aborted).",
      parameters: z.object({ name: z.string() }),
      // Its own budget: the tests of default budgets make the host's toolTimeoutMs tiny.
      timeoutMs: 20_000,
      handler: async ({ name }, ctx) => {
        await host.registerSessionTool(ctx.sessionId, [
          defineTool({
            name,
            description: "Returns its value and the node that ran it.",
            parameters: z.object({ value: z.unknown() }),
            handler: ({ value }) => ({ value, node: node() }),
          }),
          defineTool({
            name: `${name}_stream`,
            description: "Streams `count` chunks naming the node that ran it.",
            parameters: z.object({ count: z.int().min(0).max(100) }),
            streaming: true,
            handler: async function* ({ count }) {
              for (let i = 0; i < count; i++) yield { i, node: node() };
            },
          }),
          defineTool({
            name: `${name}_hold`,
            description:
              "Streams one chunk naming the node that ran it, then waits until the call is aborted.",
            streaming: true,
            handler: async function* (_args, ctx) {
              yield { i: 0, node: node() };
              await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve, { once: true }));
            },
          }),
        ]);
        return node();
      },
    }),
  ]);
}
