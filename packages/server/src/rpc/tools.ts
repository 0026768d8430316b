import type * as grpc from "@grpc/grpc-js";
import { BridgeError, ErrorType, encodeValue, pb, type pbValues } from "@toolbridge/core";
import { errorInfo, type HostRuntime } from "../runtime.js";
import { bindArguments } from "../tools/args.js";
import type { Tool } from "../tools/define.js";
import { ToolInvocation } from "../tools/executor.js";

export async function listTools(rt: HostRuntime, req: pb.ListToolsRequest): Promise<pb.ListToolsResponse> {
  try {
    await rt.sessions.require(req.sessionId);
    const tools = rt.tools
      .list(req.sessionId)
      .map(({ tool, sessionScoped }) =>
        tool.spec(sessionScoped ? pb.ToolScope.TOOL_SCOPE_SESSION : pb.ToolScope.TOOL_SCOPE_GLOBAL),
      );
    return { success: true, error: undefined, tools };
  } catch (error) {
    return { success: false, error: errorInfo(rt, error), tools: [] };
  }
}

export function resolveTool(rt: HostRuntime, sessionId: string, name: string): Tool {
  const tool = rt.tools.resolve(sessionId, name);
  if (tool !== undefined) return tool;
  const names = rt.tools.names(sessionId);
  const shown = names.slice(0, 20).join(", ") + (names.length > 20 ? ", ..." : "");
  throw new BridgeError(
    ErrorType.ToolNotFound,
    `no tool named '${name.slice(0, 200)}' in session '${sessionId}'; available: ${shown || "none"}`,
    { details: { tool: name.slice(0, 200) } },
  );
}

/** The timeout of one call: the tool's (or the host's), shortened by the request's and the gRPC deadline. */
export function effectiveTimeout(
  rt: HostRuntime,
  tool: Tool,
  requestedMs: number,
  deadline: grpc.Deadline,
): number {
  let timeout = tool.timeoutMs ?? rt.config.toolTimeoutMs;
  if (requestedMs > 0) timeout = Math.min(timeout, requestedMs);
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  if (Number.isFinite(at)) timeout = Math.min(timeout, Math.max(1, at - Date.now()));
  return timeout;
}

/** A tool's result as a Value; a result the codec refuses is the tool's failure, not the caller's. */
export function encodeResult(tool: Tool, result: unknown): pbValues.Value {
  try {
    return encodeValue(result);
  } catch (error) {
    if (error instanceof BridgeError) {
      throw new BridgeError(
        ErrorType.ToolExecutionError,
        `tool '${tool.name}' returned a value that cannot be sent: ${error.message}`,
        { details: error.details },
      );
    }
    throw error;
  }
}

export const CANCELLED_BY_CLIENT = () =>
  new BridgeError(ErrorType.Cancelled, "the client cancelled the call or went away");

export interface CallRequest {
  sessionId: string;
  toolId: string;
  args: pbValues.Value[];
  kwargs: { [key: string]: pbValues.Value };
  timeoutMs: number;
}

/** Validates a call and prepares its invocation; throws the in-band error for any refusal. */
export async function prepareInvocation(
  rt: HostRuntime,
  req: CallRequest,
  requestId: string,
  deadline: grpc.Deadline,
): Promise<ToolInvocation> {
  await rt.sessions.require(req.sessionId);
  return createInvocation(rt, req, requestId, deadline);
}

/** `prepareInvocation` for a session the caller has already looked up. */
export function createInvocation(
  rt: HostRuntime,
  req: CallRequest,
  requestId: string,
  deadline: grpc.Deadline,
): ToolInvocation {
  const tool = resolveTool(rt, req.sessionId, req.toolId);
  const args = bindArguments(tool, req.args, req.kwargs);
  return new ToolInvocation(tool, args, {
    sessionId: req.sessionId,
    requestId,
    timeoutMs: effectiveTimeout(rt, tool, req.timeoutMs, deadline),
    exposeStackTraces: rt.config.exposeStackTraces,
  });
}

/** Runs a prepared invocation to its encoded result; a streaming tool's chunks are collected into a list. */
export async function runToCompletion(invocation: ToolInvocation): Promise<pbValues.Value> {
  if (!invocation.tool.streaming) {
    return encodeResult(invocation.tool, await invocation.run());
  }
  const chunks: unknown[] = [];
  const iterator = invocation.stream();
  try {
    for (let step = await iterator.next(); !step.done; step = await iterator.next()) chunks.push(step.value);
  } finally {
    iterator.close();
  }
  return encodeResult(invocation.tool, chunks);
}
