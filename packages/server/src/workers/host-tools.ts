/**
 * The pool's Python tools as ordinary host tools: each spec becomes a `Tool` whose handler
 * forwards the call to a worker, so sessions (and other tools) call them like any other.
 * The JSON Schema pydantic made in the worker becomes the zod schema the host validates with.
 */
import { pb } from "@toolbridge/core";
import { z } from "zod";
import { defineTool, type ParametersSchema, type Tool } from "../tools/define.js";
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

/** One host tool per Python tool of the pool. */
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
      timeoutMs: spec.limits !== undefined && spec.limits.timeoutMs > 0 ? spec.limits.timeoutMs : undefined,
      cacheable: spec.cacheable,
      idempotent: spec.idempotent,
      metadata: { ...spec.metadata, worker_pool: "python" },
    };
    const callOptions = (ctx: { signal: AbortSignal; sessionId: string; requestId: string }) => ({
      signal: ctx.signal,
      sessionId: ctx.sessionId,
      requestId: ctx.requestId,
      // The host's own timeout (and the signal) bounds the call; the pool adds none of its own.
      timeoutMs: 0,
      affinity: options.sessionAffinity === true ? ctx.sessionId : undefined,
    });
    return spec.type === pb.ToolType.TOOL_TYPE_STREAMING
      ? defineTool({
          ...common,
          streaming: true,
          handler: (args, ctx) => pool.streamCall(spec.name, args, callOptions(ctx)),
        })
      : defineTool({ ...common, handler: (args, ctx) => pool.call(spec.name, args, callOptions(ctx)) });
  });
}
