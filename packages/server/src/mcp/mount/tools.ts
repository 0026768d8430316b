/**
 * A mounted server's tools as host tools: each becomes a global `Tool` whose handler calls
 * the server over its supervised connection, so the engine validates, limits, times out,
 * counts and records its calls like any other. The server's JSON Schemas are what ListTools
 * shows (and what the host re-serves over MCP), unchanged.
 */

import type { CallToolResult, Tool as McpTool } from "@modelcontextprotocol/client";
import { BridgeError, ErrorType, type NativeValue, type pb } from "@toolbridge/core";
import {
  type PlainToolOptions,
  type StreamingToolOptions,
  Tool,
  type ToolContext,
} from "../../tools/define.js";
import { parametersFromJsonSchema } from "../../workers/host-tools.js";
import { type Json, nativeToJson } from "../json.js";
import { isMounted, type McpServerConfig, matchesAny, mountedName } from "./config.js";
import type { MountConnection } from "./connection.js";
import type { ProgressSink } from "./progress-relay.js";

type AnyToolOptions = PlainToolOptions<never, unknown> | StreamingToolOptions<never, unknown>;

/** A tool of a mounted MCP server: its spec carries the server's own JSON Schemas. */
export class MountedTool extends Tool {
  /** The server's name of the tool. */
  readonly remoteName: string;
  /** The server's definition of the tool as JSON: the same text, the same tool. */
  readonly signature: string;
  private readonly rawInput: string;
  private readonly rawOutput: string;
  private readonly rawSpecs = new Map<pb.ToolScope, pb.ToolSpec>();

  constructor(options: AnyToolOptions, remote: McpTool) {
    super(options as ConstructorParameters<typeof Tool>[0]);
    this.remoteName = remote.name;
    this.signature = JSON.stringify(remote);
    this.rawInput = JSON.stringify(remote.inputSchema);
    this.rawOutput = remote.outputSchema === undefined ? "" : JSON.stringify(remote.outputSchema);
  }

  override spec(scope: pb.ToolScope): pb.ToolSpec {
    const own = super.spec(scope);
    // Called by the base constructor too, before this class's fields exist.
    if (this.rawSpecs === undefined) return own;
    let spec = this.rawSpecs.get(scope);
    if (spec === undefined) {
      spec = { ...own, parametersSchema: this.rawInput, outputSchema: this.rawOutput };
      this.rawSpecs.set(scope, spec);
    }
    return spec;
  }
}

/** The host's name for a server's tool, or undefined (with why) when it cannot be one. */
const TOOL_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/;

export interface Skipped {
  readonly tool: string;
  readonly reason: string;
}

/** The tools of `server` the mount takes (allow, deny), as host tools; and those it cannot take. */
export function mountedTools(
  serverName: string,
  config: McpServerConfig,
  connection: MountConnection,
  tools: readonly McpTool[],
): { tools: MountedTool[]; skipped: Skipped[] } {
  const out: MountedTool[] = [];
  const skipped: Skipped[] = [];
  for (const remote of tools) {
    if (!isMounted(config, remote.name)) continue;
    const name = mountedName(serverName, config, remote.name);
    if (!TOOL_NAME.test(name)) {
      skipped.push({
        tool: remote.name,
        reason: `'${name}' is not a valid tool name (letters, digits, _ . -; at most 128)`,
      });
      continue;
    }
    try {
      out.push(mountedTool(name, serverName, config, connection, remote));
    } catch (error) {
      skipped.push({ tool: remote.name, reason: error instanceof Error ? error.message : String(error) });
    }
  }
  return { tools: out, skipped };
}

function mountedTool(
  name: string,
  serverName: string,
  config: McpServerConfig,
  connection: MountConnection,
  remote: McpTool,
): MountedTool {
  const common = {
    name,
    description: remote.description ?? remote.title ?? "",
    parameters: parametersFromJsonSchema(JSON.stringify(remote.inputSchema)) as never,
    timeoutMs: config.timeoutMs,
    maxConcurrentCalls: config.maxConcurrentCalls,
    rateLimitPerMinute: config.rateLimitPerMinute,
    idempotent: remote.annotations?.idempotentHint === true,
    metadata: { mcp_server: serverName, mcp_tool: remote.name },
  };
  const call = (args: Record<string, unknown>, ctx: ToolContext, onProgress?: ProgressSink) =>
    connection.call(remote.name, argumentsOf(args), { signal: ctx.signal, onProgress });
  const what = `${serverName}'s tool ${remote.name}`;
  if (matchesAny(remote.name, config.streaming)) {
    return new MountedTool(
      { ...common, streaming: true, handler: (args, ctx) => streamOf(what, (sink) => call(args, ctx, sink)) },
      remote,
    );
  }
  return new MountedTool(
    { ...common, handler: async (args, ctx) => resultValue(what, await call(args, ctx)) },
    remote,
  );
}

function argumentsOf(args: Record<string, unknown>): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const [key, value] of Object.entries(args)) {
    if (value !== undefined) out[key] = nativeToJson(value as NativeValue);
  }
  return out;
}

/**
 * A call whose progress notifications are chunks (`{progress, total?, message?}`), and
 * whose result is the last chunk.
 */
async function* streamOf(
  what: string,
  start: (sink: ProgressSink) => Promise<CallToolResult>,
): AsyncGenerator<unknown, void, undefined> {
  const pending: Record<string, Json>[] = [];
  let wake: (() => void) | undefined;
  let settled: { result: CallToolResult } | { error: unknown } | undefined;
  start((progress) => {
    const chunk: Record<string, Json> = { progress: progress.progress };
    if (progress.total !== undefined) chunk.total = progress.total;
    if (progress.message !== undefined) chunk.message = progress.message;
    pending.push(chunk);
    wake?.();
  }).then(
    (result) => {
      settled = { result };
      wake?.();
    },
    (error: unknown) => {
      settled = { error };
      wake?.();
    },
  );
  for (;;) {
    while (pending.length > 0) yield pending.shift();
    if (settled !== undefined) break;
    await new Promise<void>((resolve) => {
      wake = resolve;
    });
    wake = undefined;
  }
  if ("error" in settled) throw settled.error;
  yield resultValue(what, settled.result);
}

/**
 * A call's result as a value: its structuredContent when it has some, else its text (one
 * string), else its content blocks (images and audio with their data as bytes). A result
 * flagged isError is the tool's failure: ToolExecutionError with its text.
 */
export function resultValue(what: string, result: CallToolResult): unknown {
  const content = result.content ?? [];
  if (result.isError === true) {
    const text = content.map((block) => (block.type === "text" ? block.text : `[${block.type}]`)).join("\n");
    throw new BridgeError(ErrorType.ToolExecutionError, `${what} failed: ${text || "(no message)"}`, {
      details: { reason: "mcp_tool_error" },
    });
  }
  if (result.structuredContent !== undefined) return result.structuredContent;
  if (content.every((block) => block.type === "text")) {
    return content.map((block) => (block.type === "text" ? block.text : "")).join("\n");
  }
  return content.map((block) => {
    if (block.type === "image" || block.type === "audio") {
      return { type: block.type, mimeType: block.mimeType, data: Buffer.from(block.data, "base64") };
    }
    return block;
  });
}
