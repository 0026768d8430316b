/**
 * The MCP peer: the benchmark tools on the official TypeScript MCP server SDK (v2), the
 * system a user would otherwise pick. Results go back as text content, as MCP tools do.
 *
 *   node --import tsx bench/peers/mcp-server.ts --transport stdio
 *   node --import tsx bench/peers/mcp-server.ts --transport http [--port 0]
 *       prints "listening on http://127.0.0.1:<port>/mcp"
 */
import { createServer } from "node:http";
import { localhostHostValidation, toNodeHandler } from "@modelcontextprotocol/node";
import { createMcpHandler, McpServer } from "@modelcontextprotocol/server";
import { StdioServerTransport } from "@modelcontextprotocol/server/stdio";
import { z } from "zod";
import { compute, flag, MAX_COMPUTE_N, TOOL_DESCRIPTIONS } from "./semantics.js";

/** Large enough for the 1 MiB payloads (JSON-escaped) the benchmark sends. */
const MAX_BODY_BYTES = 16 * 1024 * 1024;

function text(value: string) {
  return { content: [{ type: "text" as const, text: value }] };
}

function buildServer(): McpServer {
  const server = new McpServer({ name: "toolbridge-bench", version: "1.0.0" });
  server.registerTool(
    "echo",
    { description: TOOL_DESCRIPTIONS.echo, inputSchema: z.object({ payload: z.string() }) },
    async ({ payload }) => text(payload),
  );
  server.registerTool(
    "compute",
    {
      description: TOOL_DESCRIPTIONS.compute,
      inputSchema: z.object({ n: z.int().min(0).max(MAX_COMPUTE_N) }),
    },
    async ({ n }) => text(String(compute(n))),
  );
  return server;
}

const transport = flag("transport", "stdio");
if (transport === "stdio") {
  await buildServer().connect(new StdioServerTransport());
} else if (transport === "http") {
  // The SDK's documented pattern: a server instance per request from a factory.
  const handler = createMcpHandler(() => buildServer(), { maxRequestBodySize: MAX_BODY_BYTES });
  const serve = toNodeHandler(handler, { maxRequestBodySize: MAX_BODY_BYTES });
  const validateHost = localhostHostValidation();
  const http = createServer((req, res) => {
    if (!validateHost(req, res)) return;
    void serve(req, res);
  });
  http.listen(Number(flag("port", "0")), "127.0.0.1", () => {
    const address = http.address();
    const port = typeof address === "object" && address !== null ? address.port : 0;
    process.stdout.write(`listening on http://127.0.0.1:${port}/mcp\n`);
  });
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.on(signal, () => http.close(() => process.exit(0)));
  }
} else {
  process.stderr.write(`unknown --transport ${transport}: use stdio or http\n`);
  process.exit(2);
}
