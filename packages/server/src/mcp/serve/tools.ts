/**
 * The registry's tools as MCP tools: a ToolSpec becomes a `tools/list` entry (its JSON
 * Schemas passed through), and a `tools/call` runs through the host's call engine. A
 * failed call is an `isError` result whose text names the error type; only a tool that does
 * not exist is a protocol error, as the MCP specification has it.
 */

import type { CallToolResult, Tool as McpTool, ServerContext } from "@modelcontextprotocol/server";
import { ProtocolError, ProtocolErrorCode } from "@modelcontextprotocol/server";
import { BridgeError, ErrorType, pb, type pbValues } from "@toolbridge/core";
import { type CallContext, type CallRequest, Cancellation } from "../../tools/engine.js";
import { MCP_PROTOCOL, type McpEngine } from "../engine.js";
import { type Json, jsonToValue, textOf, valueToJson } from "../json.js";
import type { Scope } from "./scope.js";

/** The `_meta` key of a failed result's error: `{ type, message, details }`. */
export const ERROR_META_KEY = "toolbridge/error";
/** The `_meta` key of a tool marking it streaming: its chunks come as progress notifications. */
export const STREAMING_META_KEY = "toolbridge/streaming";

type JsonSchema = Record<string, unknown>;

/** A spec as a `tools/list` entry. */
export function mcpToolOf(spec: pb.ToolSpec): McpTool {
  const tool: McpTool = {
    name: spec.name,
    description: spec.description,
    inputSchema: inputSchemaOf(spec) as McpTool["inputSchema"],
  };
  const output = outputSchemaOf(spec);
  if (output !== undefined) tool.outputSchema = output as McpTool["outputSchema"];
  if (spec.idempotent) tool.annotations = { idempotentHint: true };
  if (spec.type === pb.ToolType.TOOL_TYPE_STREAMING) tool._meta = { [STREAMING_META_KEY]: true };
  return tool;
}

function inputSchemaOf(spec: pb.ToolSpec): JsonSchema {
  const schema = parseSchema(spec.parametersSchema) ?? {};
  // MCP wants an object schema at the root; a tool's parameters are always one.
  return schema.type === "object" ? schema : { type: "object", ...schema };
}

/**
 * The schema of what a call returns: the tool's output schema, or for a streaming tool (its
 * output schema is a chunk's) a list of chunks, which is what a call collects.
 */
export function outputSchemaOf(spec: pb.ToolSpec): JsonSchema | undefined {
  const schema = parseSchema(spec.outputSchema);
  if (schema === undefined || spec.type !== pb.ToolType.TOOL_TYPE_STREAMING) return schema;
  const { $schema, ...items } = schema;
  return $schema === undefined ? { type: "array", items } : { $schema, type: "array", items };
}

function parseSchema(text: string): JsonSchema | undefined {
  if (text === "") return undefined;
  try {
    const parsed = JSON.parse(text) as unknown;
    return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)
      ? (parsed as JsonSchema)
      : undefined;
  } catch {
    return undefined;
  }
}

/** What a call needs of the MCP request besides its params. */
export interface McpCall {
  readonly name: string;
  readonly arguments: Record<string, unknown> | undefined;
  /** The client's progress token: a streaming tool's chunks go out as progress notifications. */
  readonly progressToken: string | number | undefined;
  readonly signal: AbortSignal;
  readonly notify: ServerContext["mcpReq"]["notify"];
  /**
   * Fits a result to the client's protocol revision (Server.projectCallToolResult: a 2025
   * client gets a non-object result wrapped as `{result: ...}`, as its outputSchema was).
   */
  readonly project: (result: CallToolResult, outputSchema: JsonSchema | undefined) => CallToolResult;
}

/** Runs a `tools/call` through the engine; answers a failure as an `isError` result. */
export async function callTool(engine: McpEngine, scope: Scope, call: McpCall): Promise<CallToolResult> {
  if (engine.draining) {
    return failure(engine, new BridgeError(ErrorType.Unavailable, "the toolbridge host is shutting down"));
  }
  const spec = await engine.toolSpec(scope.sessionId, call.name);
  if (spec === undefined) {
    const names = (await engine.toolSpecs(scope.sessionId)).map((s) => s.name);
    const shown = names.slice(0, 20).join(", ") + (names.length > 20 ? ", ..." : "");
    throw new ProtocolError(
      ProtocolErrorCode.InvalidParams,
      `Unknown tool '${call.name.slice(0, 200)}'; available: ${shown || "none"}`,
    );
  }
  let kwargs: Record<string, pbValues.Value>;
  try {
    kwargs = argumentsOf(call.arguments);
  } catch (error) {
    return failure(engine, error);
  }
  const request: CallRequest = {
    sessionId: scope.sessionId,
    toolId: call.name,
    args: [],
    kwargs,
    timeoutMs: 0,
  };
  const cancellation = new Cancellation();
  const onAbort = () =>
    cancellation.cancel(
      new BridgeError(ErrorType.Cancelled, "the MCP client cancelled the call or went away"),
    );
  if (call.signal.aborted) onAbort();
  else call.signal.addEventListener("abort", onAbort, { once: true });
  const requestId = engine.newRequestId();
  const ctx: CallContext = {
    requestId,
    deadline: Number.POSITIVE_INFINITY,
    cancellation,
    log: engine.log,
    principal: scope.principal,
    // The global scope has no session to check; a session's is checked by the engine.
    sessionChecked: scope.sessionId === "" ? true : undefined,
    protocol: MCP_PROTOCOL,
  };
  try {
    const streamed = spec.type === pb.ToolType.TOOL_TYPE_STREAMING && call.progressToken !== undefined;
    const result = await engine.track(
      streamed ? streamWithProgress(engine, request, ctx, call) : plainCall(engine, request, ctx),
    );
    return call.project(resultOf(engine, spec, result), outputSchemaOf(spec));
  } catch (error) {
    return failure(engine, error);
  } finally {
    call.signal.removeEventListener("abort", onAbort);
  }
}

/** The arguments of a call as the engine's keyword arguments; InvalidValue for one JSON cannot carry. */
function argumentsOf(args: Record<string, unknown> | undefined): Record<string, pbValues.Value> {
  const kwargs: Record<string, pbValues.Value> = {};
  for (const [name, value] of Object.entries(args ?? {})) {
    try {
      kwargs[name] = jsonToValue(value);
    } catch (error) {
      if (!(error instanceof BridgeError)) throw error;
      throw new BridgeError(error.type, `argument '${name}': ${error.message}`, {
        details: { ...error.details, field: name },
      });
    }
  }
  return kwargs;
}

async function plainCall(engine: McpEngine, request: CallRequest, ctx: CallContext): Promise<Json> {
  const outcome = await engine.runCall(request, ctx);
  if (!outcome.success) throw outcome.error;
  return valueToJson(outcome.result);
}

/** A streaming tool's chunks as progress notifications (each chunk's JSON as the message); resolves with them all. */
async function streamWithProgress(
  engine: McpEngine,
  request: CallRequest,
  ctx: CallContext,
  call: McpCall,
): Promise<Json> {
  const chunks: Json[] = [];
  const outcome = await engine.runStream(request, ctx, (value, sequence) => {
    const json = valueToJson(value);
    chunks.push(json);
    return call.notify({
      method: "notifications/progress",
      params: {
        progressToken: call.progressToken as string | number,
        progress: sequence + 1,
        message: textOf(json),
      },
    });
  });
  if (!outcome.success) throw outcome.error;
  return chunks;
}

/** A successful call as MCP's result: text content always, structuredContent with an output schema. */
function resultOf(engine: McpEngine, spec: pb.ToolSpec, json: Json): CallToolResult {
  const text = textOf(json);
  const limit = engine.config.maxMessageBytes;
  if (Buffer.byteLength(text) > limit) {
    return failure(
      engine,
      new BridgeError(
        ErrorType.ResourceExhausted,
        `the result of tool '${spec.name}' is ${Buffer.byteLength(text)} bytes as JSON, over the host's ` +
          `${limit}-byte message limit (maxMessageBytes); return less data, or stream it in chunks`,
        { details: { size: String(Buffer.byteLength(text)), limit: String(limit) } },
      ),
    );
  }
  const result: CallToolResult = { content: [{ type: "text", text }] };
  if (spec.outputSchema !== "") result.structuredContent = json as CallToolResult["structuredContent"];
  return result;
}

/** A failure as an `isError` result: "<ErrorType>: <message>", with the ErrorInfo in `_meta`. */
function failure(engine: McpEngine, error: unknown): CallToolResult {
  const info = isErrorInfo(error) ? error : engine.errorInfo(error);
  return {
    content: [{ type: "text", text: `${info.type}: ${info.message}` }],
    isError: true,
    _meta: { [ERROR_META_KEY]: { type: info.type, message: info.message, details: info.details } },
  };
}

function isErrorInfo(value: unknown): value is pb.ErrorInfo {
  return (
    typeof value === "object" &&
    value !== null &&
    !(value instanceof Error) &&
    typeof (value as pb.ErrorInfo).type === "string" &&
    typeof (value as pb.ErrorInfo).message === "string"
  );
}
