/**
 * The pool's Python tools as ordinary host tools: each spec becomes a `Tool` whose handler
 * forwards the call to a worker, so sessions (and other tools) call them like any other.
 * The JSON Schema pydantic made in the worker becomes the zod schema the host validates with.
 */
import { encodeKwargs, pb, type pbValues } from "@toolbridge/core";
import { z } from "zod";
import { defineTool, type ParametersSchema, type Tool, type ToolContext } from "../tools/define.js";
import { EncodedOutput } from "../tools/output.js";
import type { EncodedCallOptions } from "./calls.js";
import type { WorkerPool } from "./pool.js";

/** A zod object schema for a worker tool's JSON Schema (keys in schema order). */
export function parametersFromJsonSchema(json: string): ParametersSchema {
  const schema = JSON.parse(json === "" ? "{}" : json) as Record<string, unknown>;
  try {
    const converted = z.fromJSONSchema({ type: "object", ...schema });
    if (converted instanceof z.ZodObject) return converted;
  } catch {
    // Falls through: a schema zod cannot convert is checked by the worker alone.
  }
  const properties = (schema.properties ?? {}) as Record<string, unknown>;
  return z.looseObject(Object.fromEntries(Object.keys(properties).map((name) => [name, z.unknown()])));
}

export interface HostToolOptions {
  /** Send calls of one session to the same worker while it lives. */
  sessionAffinity?: boolean;
}

/**
 * One host tool per Python tool of the pool. The call engine owns each call's timeout (the
 * tool's `timeout_ms` from its spec, the host's defaults, the caller's), as for every tool:
 * its timer aborts the call, and the worker hears the deadline only as a backstop. Results
 * come back as the worker encoded them, checked there against the output schema the spec
 * publishes, and go to the caller unchanged.
 */
export function hostToolsFor(
  pool: WorkerPool,
  specs: readonly pb.ToolSpec[],
  options: HostToolOptions = {},
): Tool[] {
  return specs.map((spec) => {
    const common = {
      name: spec.name,
      description: spec.description,
      parameters: parametersFromJsonSchema(spec.parametersSchema),
      outputJsonSchema: outputFromJsonSchema(spec.outputSchema),
      timeoutMs: spec.limits !== undefined && spec.limits.timeoutMs > 0 ? spec.limits.timeoutMs : undefined,
      cacheable: spec.cacheable,
      idempotent: spec.idempotent,
      metadata: { ...spec.metadata, worker_pool: "python" },
    };
    const callOptions = (ctx: ToolContext): EncodedCallOptions => ({
      signal: ctx.signal,
      deadline: ctx.deadline,
      sessionId: ctx.sessionId,
      requestId: ctx.requestId,
      affinity: options.sessionAffinity === true ? ctx.sessionId : undefined,
    });
    return spec.type === pb.ToolType.TOOL_TYPE_STREAMING
      ? defineTool({
          ...common,
          streaming: true,
          handler: (args, ctx) =>
            encodedChunks(pool.streamEncoded(spec.name, [], encodeKwargs(args), callOptions(ctx))),
        })
      : defineTool({
          ...common,
          handler: async (args, ctx) =>
            new EncodedOutput(await pool.callEncoded(spec.name, [], encodeKwargs(args), callOptions(ctx))),
        });
  });
}

/** The output schema pydantic made, as published; undefined for a tool without one. */
function outputFromJsonSchema(json: string): Record<string, unknown> | undefined {
  return json === "" ? undefined : (JSON.parse(json) as Record<string, unknown>);
}

async function* encodedChunks(values: AsyncIterable<pbValues.Value>): AsyncGenerator<EncodedOutput> {
  for await (const value of values) yield new EncodedOutput(value);
}
