/**
 * Test tools with output schemas (registered by test-tools.ts): results and chunks whose
 * schema says which numbers are floats, and tools that break their own schema.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { defineTool, type ToolBridgeHost } from "@toolbridge/server";
import { z } from "zod";

interface Tree {
  value: number;
  children: Tree[];
}
const Tree: z.ZodType<Tree> = z.object({
  value: z.number(),
  get children() {
    return z.array(Tree);
  },
});

const Shape = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("circle"), radius: z.number() }),
  z.object({ kind: z.literal("grid"), cells: z.int() }),
]);

/** Every place a float may hide: fields, lists, records, tuples, nullable, unions, recursion. */
const Measurement = z.object({
  ratio: z.number(),
  huge: z.number(),
  count: z.int(),
  samples: z.array(z.number()),
  byName: z.record(z.string(), z.number()),
  pair: z.tuple([z.int(), z.number()]),
  maybe: z.number().nullable(),
  shapes: z.array(Shape),
  tree: Tree,
  untyped: z.unknown(),
});

const Reading = z.object({ i: z.int(), x: z.number() });

export default function registerOutputTools(host: ToolBridgeHost): void {
  host.registerTool([
    defineTool({
      name: "measure",
      description: "Returns integral numbers where its output schema says number, integer or nothing.",
      output: Measurement,
      handler: (): z.output<typeof Measurement> => ({
        ratio: 1,
        huge: 1e300,
        count: 3,
        samples: [1, 2.5],
        byName: { a: 2 },
        pair: [4, 4],
        maybe: 7,
        shapes: [
          { kind: "circle", radius: 2 },
          { kind: "grid", cells: 9 },
        ],
        tree: { value: 1, children: [{ value: 2, children: [] }] },
        untyped: 5,
      }),
    }),
    defineTool({
      name: "readings",
      description: "Streams {i, x} with x = 1 then x = 1e300; x is a number, i an integer.",
      streaming: true,
      output: Reading,
      handler: async function* () {
        yield { i: 0, x: 1 };
        yield { i: 1, x: 1e300 };
      },
    }),
    defineTool({
      name: "bad_output",
      description: "Returns a total as a string although its output schema says number.",
      output: z.object({ order: z.object({ total: z.number() }) }),
      handler: () => ({ order: { total: "12" } }) as unknown as { order: { total: number } },
    }),
    defineTool({
      name: "bad_chunk",
      description: "Streams one chunk that fits its schema, then one that does not.",
      streaming: true,
      output: Reading,
      handler: async function* () {
        yield { i: 0, x: 0.5 };
        yield { i: 1.5, x: 1 };
      },
    }),
    defineTool({
      name: "ticks",
      description: "Streams n ticks, delay_ms apart; declares a 300 ms idle timeout.",
      parameters: z.object({ n: z.int().min(0), delay_ms: z.int().min(0) }),
      streaming: true,
      idleTimeoutMs: 300,
      timeoutMs: 60_000,
      handler: async function* ({ n, delay_ms }, ctx) {
        for (let i = 0; i < n; i++) {
          await sleep(delay_ms, undefined, { signal: ctx.signal });
          yield i;
        }
      },
    }),
  ]);
}
