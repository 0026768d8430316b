/**
 * Tools whose schemas use JSON Schema references, for the DSPy integration tests: a named
 * schema (`.meta({ id })` puts it in `$defs`), one named schema inside another, a recursive
 * one (a getter refers back to the schema), and a result whose output schema says `number`.
 * Served next to test-tools.ts: `toolbridge serve --tools test-tools.ts --tools dspy-tools.ts`.
 */
import { defineTool, type Tool } from "@toolbridge/server";
import { z } from "zod";

const Dimensions = z
  .object({
    width: z.number().positive().describe("Width in cm"),
    height: z.number().positive().describe("Height in cm"),
  })
  .meta({ id: "Dimensions" });

const Parcel = z
  .object({
    label: z.string().min(1),
    size: Dimensions,
  })
  .meta({ id: "Parcel" });

interface TreeNode {
  name: string;
  children?: TreeNode[];
}

const TreeNode: z.ZodType<TreeNode> = z
  .object({
    name: z.string(),
    get children() {
      return z.array(TreeNode).optional();
    },
  })
  .meta({ id: "TreeNode" });

function countNodes(node: TreeNode): number {
  return 1 + (node.children ?? []).reduce((sum, child) => sum + countNodes(child), 0);
}

export const tools: Tool[] = [
  defineTool({
    name: "area",
    description: "The area of a rectangle, in square cm.",
    parameters: z.object({ dimensions: Dimensions }),
    handler: ({ dimensions }) => dimensions.width * dimensions.height,
  }),
  defineTool({
    name: "ship_parcel",
    description: "Ships a parcel; returns its label and footprint.",
    parameters: z.object({ parcel: Parcel, express: z.boolean().optional(), note: z.string().default("") }),
    handler: ({ parcel, express, note }) => ({
      label: parcel.label,
      footprint: parcel.size.width * parcel.size.height,
      express: express ?? false,
      note,
    }),
  }),
  defineTool({
    name: "count_nodes",
    description: "Counts the nodes of a tree.",
    parameters: z.object({ tree: TreeNode }),
    handler: ({ tree }) => countNodes(tree),
  }),
  defineTool({
    name: "quote",
    description: "A price quote: the total is a number, the item count an integer.",
    parameters: z.object({ items: z.int().min(1) }),
    output: z.object({ total: z.number(), items: z.int(), lines: z.array(z.number()) }),
    handler: ({ items }) => ({ total: items * 25, items, lines: Array.from({ length: items }, () => 25) }),
  }),
];
