/**
 * The toolbridge peer: the benchmark tools as a tools module for the real host
 * (`toolbridge serve --tools bench/peers/toolbridge-tools.ts`).
 */
import { defineTool, type ToolBridgeHost } from "@toolbridge/server";
import { z } from "zod";
import { compute, MAX_CHUNK_BYTES, MAX_COMPUTE_N, streamBlock, TOOL_DESCRIPTIONS } from "./semantics.js";

export default function register(host: ToolBridgeHost): void {
  host.registerTool([
    defineTool({
      name: "echo",
      description: TOOL_DESCRIPTIONS.echo,
      parameters: z.object({ payload: z.string() }),
      handler: ({ payload }) => payload,
    }),
    defineTool({
      name: "compute",
      description: TOOL_DESCRIPTIONS.compute,
      parameters: z.object({ n: z.int().min(0).max(MAX_COMPUTE_N) }),
      handler: ({ n }) => compute(n),
    }),
    // The stall workload's large requests: a map counted, and a map sent back.
    defineTool({
      name: "count_entries",
      description: "Counts the entries of a map of numbers.",
      parameters: z.object({ data: z.record(z.string(), z.number()) }),
      handler: ({ data }) => Object.keys(data).length,
    }),
    defineTool({
      name: "echo_value",
      description: "Returns its map of numbers unchanged.",
      parameters: z.object({ data: z.record(z.string(), z.number()) }),
      handler: ({ data }) => data,
    }),
    defineTool({
      name: "stream_bytes",
      description: TOOL_DESCRIPTIONS.stream_bytes,
      parameters: z.object({ chunks: z.int().min(0), chunk_bytes: z.int().min(1).max(MAX_CHUNK_BYTES) }),
      streaming: true,
      timeoutMs: 300_000,
      handler: async function* ({ chunks, chunk_bytes }, ctx) {
        const block = streamBlock(chunk_bytes);
        for (let i = 0; i < chunks && !ctx.signal.aborted; i++) yield block;
      },
    }),
  ]);
}
