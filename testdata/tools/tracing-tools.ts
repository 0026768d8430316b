/**
 * Tools for the tracing tests (python/tests/test_tracing.py, packages/server/test/tracing.test.ts):
 * work of a tool's own that makes a span with the OpenTelemetry API, a call to one of the
 * host's Python workers, and a tool that calls another tool through the TypeScript client.
 * Served with `--tools testdata/tools/tracing-tools.ts` (beside test-tools.ts).
 */
import { trace } from "@opentelemetry/api";
import { ToolBridgeClient } from "@toolbridge/client";
import { defineTool, type ToolBridgeHost } from "@toolbridge/server";
import { z } from "zod";

const tracer = trace.getTracer("tracing-tools");
/** The calls of each `rendezvous` key waiting for the rest of their group. */
const rendezvous = new Map<string, { arrived: number; all: Promise<void>; release: () => void }>();

/** The active span's ids where the tool's code runs (empty when nothing is traced). */
function activeSpan(): { traceId: string; spanId: string } {
  const context = trace.getActiveSpan()?.spanContext();
  return { traceId: context?.traceId ?? "", spanId: context?.spanId ?? "" };
}

export default function registerTracingTools(host: ToolBridgeHost): void {
  let client: Promise<ToolBridgeClient> | undefined;
  /** A client of this host in session `sessionId`, as the host's own tools would make one. */
  const clientIn = async (sessionId: string) => {
    client ??= Promise.resolve(
      new ToolBridgeClient(host.clientTarget ?? "", host.authenticates ? { token: host.hostToken } : {}),
    );
    const made = await client;
    await made.initializeSession(sessionId);
    return made;
  };
  host.registerTool([
    defineTool({
      name: "active_span",
      description: "The ids of the span active where the tool's code runs.",
      handler: () => activeSpan(),
    }),
    defineTool({
      name: "rendezvous",
      description:
        "Waits until `n` calls with `key` have arrived (or its call is aborted), then returns the ids of " +
        "the span active where it ran.",
      parameters: z.object({ key: z.string(), n: z.int().min(1).max(1000) }),
      handler: async ({ key, n }, ctx) => {
        const seen = activeSpan();
        let group = rendezvous.get(key);
        if (group === undefined) {
          let release: () => void = () => {};
          const all = new Promise<void>((resolve) => {
            release = resolve;
          });
          group = { arrived: 0, all, release };
          rendezvous.set(key, group);
        }
        group.arrived++;
        if (group.arrived === n) {
          rendezvous.delete(key);
          group.release();
        }
        const aborted = new Promise<never>((_, reject) =>
          ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason), { once: true }),
        );
        await Promise.race([group.all, aborted]);
        return seen;
      },
    }),
    defineTool({
      name: "traced_work",
      description:
        "Does work of its own in a span ('lookup'), then, with `worker_value`, calls the Python " +
        "workers' echo tool; returns the active span's ids and what the worker echoed.",
      parameters: z.object({ worker_value: z.string().optional() }),
      handler: async ({ worker_value }, ctx) => {
        const seen = activeSpan();
        await tracer.startActiveSpan("lookup", async (span) => {
          await Promise.resolve();
          span.end();
        });
        const echoed =
          worker_value === undefined
            ? null
            : await host.workers.call(
                "echo",
                { value: worker_value },
                { sessionId: ctx.sessionId, signal: ctx.signal },
              );
        return { ...seen, echoed };
      },
    }),
    defineTool({
      name: "call_through_client",
      description: "Calls the tool `tool` (no arguments) of this session through the TypeScript client.",
      parameters: z.object({ tool: z.string() }),
      handler: async ({ tool }, ctx) => (await clientIn(ctx.sessionId)).executeTool(tool, {}),
    }),
  ]);
}
