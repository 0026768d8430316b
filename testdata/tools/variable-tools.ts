/**
 * Tools through which the Python tests reach the TypeScript side of session variables
 * (host.variables(sessionId)): read and write as the application, turn a tensor around
 * on the host, and run a host-side watcher whose updates a test collects afterwards.
 */
import { defineTool, Tensor, type ToolBridgeHost, type VariableUpdate } from "@toolbridge/server";
import { z } from "zod";

interface HostWatch {
  readonly updates: { kind: string; name: string; version: number; value: unknown }[];
  ended: boolean;
  error: string;
}

const watches = new Map<string, HostWatch>();
let tickets = 0;

function summarize(update: VariableUpdate): HostWatch["updates"][number] {
  switch (update.kind) {
    case "session_ended":
      return { kind: update.kind, name: "", version: 0, value: update.reason };
    case "deleted":
      return { kind: update.kind, name: update.name, version: update.version, value: null };
    default:
      return { kind: update.kind, name: update.name, version: update.version, value: update.variable.value };
  }
}

export default function registerVariableTools(host: ToolBridgeHost): void {
  host.registerTool([
    defineTool({
      name: "var_read",
      description: "Reads a session variable as the TypeScript application sees it.",
      parameters: z.object({ name: z.string() }),
      handler: async ({ name }, ctx) => {
        const variable = await host.variables(ctx.sessionId).get(name);
        return {
          value: variable.value,
          version: variable.version,
          type: variable.type,
          created_by: variable.createdBy,
          updated_by: variable.updatedBy,
          tags: variable.tags,
        };
      },
    }),
    defineTool({
      name: "var_write",
      description: "Writes a session variable as the TypeScript application; returns its version.",
      parameters: z.object({ name: z.string(), value: z.unknown() }),
      handler: async ({ name, value }, ctx) => (await host.variables(ctx.sessionId).set(name, value)).version,
    }),
    defineTool({
      name: "var_tensor_reverse",
      description:
        "Reads tensor variable `name` as a TypedArray, writes its elements reversed (same dtype and shape) to `into`.",
      parameters: z.object({ name: z.string(), into: z.string() }),
      handler: async ({ name, into }, ctx) => {
        const variables = host.variables(ctx.sessionId);
        const { value } = await variables.get(name);
        if (!(value instanceof Tensor)) throw new TypeError(`variable '${name}' does not hold a tensor`);
        const elements = value.toTypedArray();
        const reversed = elements.slice().reverse();
        await variables.set(into, Tensor.fromTypedArray(reversed, value.shape, value.dtype));
        return { typed_array: elements.constructor.name, dtype: value.dtype, shape: [...value.shape] };
      },
    }),
    defineTool({
      name: "var_watch_start",
      description: "Starts a host-side watcher of the session's variables; returns its id once registered.",
      parameters: z.object({ names: z.array(z.string()).default([]) }),
      handler: async ({ names }, ctx) => {
        const watcher = host.variables(ctx.sessionId).watch(names);
        await watcher.ready();
        const id = `watch-${watches.size + 1}`;
        const watch: HostWatch = { updates: [], ended: false, error: "" };
        watches.set(id, watch);
        void (async () => {
          try {
            for await (const update of watcher) watch.updates.push(summarize(update));
          } catch (error) {
            watch.error = error instanceof Error ? error.message : String(error);
          } finally {
            watch.ended = true;
          }
        })();
        return id;
      },
    }),
    defineTool({
      name: "var_watch_updates",
      description: "The updates a host-side watcher has seen so far, and whether it ended.",
      parameters: z.object({ id: z.string() }),
      handler: ({ id }) => {
        const watch = watches.get(id);
        if (watch === undefined) throw new Error(`no watch '${id}'`);
        return { updates: watch.updates, ended: watch.ended, error: watch.error };
      },
    }),
    defineTool({
      name: "next_ticket",
      description: "Hands out the next ticket number (a side effect: never cacheable).",
      handler: () => {
        tickets += 1;
        return tickets;
      },
    }),
  ]);
}
