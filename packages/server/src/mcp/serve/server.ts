/**
 * The one MCP server factory behind every transport and both protocol eras: a low-level
 * `Server` whose handlers read the registry and run calls through the engine, so the JSON
 * Schemas pass through unchanged and only the engine validates.
 */
import {
  type McpRequestContext,
  ProtocolError,
  ProtocolErrorCode,
  Server,
} from "@modelcontextprotocol/server";
import { BridgeError } from "@toolbridge/core";
import type { McpEngine } from "../engine.js";
import {
  listVariableResources,
  readVariableResource,
  VARIABLE_TEMPLATE,
  watchVariableResource,
} from "./resources.js";
import type { Scope } from "./scope.js";
import { callTool, mcpToolOf } from "./tools.js";

const INSTRUCTIONS =
  "The tools of a toolbridge host. A failed call's text starts with its error type " +
  "(ValidationError, Timeout, Unavailable, ...). Session variables are resources when the " +
  "connection works inside a toolbridge session.";

/** A server instance for `scope` speaking `era`; a 2025-era one subscribes to resources itself. */
export function buildServer(engine: McpEngine, scope: Scope, era: McpRequestContext["era"]): Server {
  const server = new Server(
    { name: "toolbridge", version: engine.version },
    {
      capabilities: { tools: { listChanged: true }, resources: { subscribe: true } },
      instructions: INSTRUCTIONS,
    },
  );
  server.setRequestHandler("tools/list", async () => {
    await checkScope(engine, scope);
    return { tools: (await engine.toolSpecs(scope.sessionId)).map(mcpToolOf) };
  });
  server.setRequestHandler("tools/call", (request, ctx) =>
    callTool(engine, scope, {
      name: request.params.name,
      arguments: request.params.arguments,
      progressToken: ctx.mcpReq._meta?.progressToken,
      signal: ctx.mcpReq.signal,
      notify: ctx.mcpReq.notify,
      project: (result, outputSchema) => server.projectCallToolResult(result, outputSchema),
    }),
  );
  server.setRequestHandler("resources/list", async () => ({
    resources: await listVariableResources(engine, scope.principal, scope.sessionId),
  }));
  server.setRequestHandler("resources/templates/list", async () => ({
    resourceTemplates: [VARIABLE_TEMPLATE],
  }));
  server.setRequestHandler("resources/read", (request) =>
    readVariableResource(engine, scope.principal, request.params.uri),
  );
  if (era === "legacy") subscribeResources(engine, scope, server);
  return server;
}

/** A session the scope names must be live and the principal's; InvalidRequest naming SessionNotFound if not. */
async function checkScope(engine: McpEngine, scope: Scope): Promise<void> {
  if (scope.sessionId === "") return;
  try {
    await engine.checkSession(scope.sessionId, scope.principal);
  } catch (error) {
    if (!(error instanceof BridgeError)) throw error;
    throw new ProtocolError(ProtocolErrorCode.InvalidRequest, `${error.type}: ${error.message}`);
  }
}

/** resources/subscribe and unsubscribe of a 2025-era connection: its watches end with it. */
function subscribeResources(engine: McpEngine, scope: Scope, server: Server): void {
  const watches = new Map<string, () => void>();
  let closed = false;
  server.setRequestHandler("resources/subscribe", async (request) => {
    const { uri } = request.params;
    if (watches.has(uri)) return {};
    // Taken before the wait, so that a second subscribe of the URI does not watch it twice.
    const placeholder = () => {};
    watches.set(uri, placeholder);
    try {
      const stop = await watchVariableResource(engine, scope.principal, uri, () => {
        server.sendResourceUpdated({ uri }).catch(() => {});
      });
      if (closed || watches.get(uri) !== placeholder) stop();
      else watches.set(uri, stop);
    } catch (error) {
      if (watches.get(uri) === placeholder) watches.delete(uri);
      throw error;
    }
    return {};
  });
  server.setRequestHandler("resources/unsubscribe", async (request) => {
    watches.get(request.params.uri)?.();
    watches.delete(request.params.uri);
    return {};
  });
  const previous = server.onclose;
  server.onclose = () => {
    closed = true;
    for (const stop of watches.values()) stop();
    watches.clear();
    previous?.();
  };
}
