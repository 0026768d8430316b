/**
 * Tools for the inspector's browser tests (packages/server/test/inspector.test.ts), served
 * next to test-tools.ts: schemas with what a generated form must handle ($defs and $ref,
 * nested objects, arrays, enums, defaults, required fields) and results whose kind the page
 * must keep (a float that is integral stays a float).
 */
import { defineTool, type ToolBridgeHost } from "@toolbridge/server";
import { z } from "zod";

const LineItem = z
  .object({
    sku: z.string().min(1).describe("Article number"),
    quantity: z.int().min(1).default(1).describe("How many"),
    size: z.enum(["S", "M", "L"]).describe("Size"),
  })
  .meta({ id: "LineItem" });

const PRICE_EUR = 14.5;
const SHIPPING_EUR = { standard: 0, express: 12 } as const;

export default function register(host: ToolBridgeHost): void {
  host.registerTool([
    defineTool({
      name: "scale",
      description: "Multiplies x by an integer factor; the result is a float, integral or not.",
      parameters: z.object({
        x: z.number().describe("The number to scale"),
        factor: z.int().default(2).describe("An integer factor"),
      }),
      output: z.number(),
      cacheable: true,
      idempotent: true,
      handler: ({ x, factor }) => x * factor,
    }),
    defineTool({
      name: "quote",
      description: "Prices an order of line items (14.50 EUR each) with shipping; the total is a float.",
      parameters: z.object({
        items: z.array(LineItem).min(1).describe("What is ordered"),
        shipping: z
          .object({
            method: z.enum(["standard", "express"]).default("standard"),
            insured: z.boolean().default(false),
          })
          .describe("How it is sent"),
        coupon: z.string().optional().describe("A coupon code, if any"),
      }),
      output: z.number(),
      handler: ({ items, shipping }) =>
        items.reduce((sum, item) => sum + item.quantity * PRICE_EUR, 0) + SHIPPING_EUR[shipping.method],
    }),
  ]);
}
