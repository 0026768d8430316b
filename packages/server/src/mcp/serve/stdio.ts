/**
 * MCP over stdio (`toolbridge mcp`): one connection on this process's stdin and stdout,
 * served by the same factory as HTTP. stdout carries protocol messages only; logs go to stderr.
 */
import type { Readable, Writable } from "node:stream";
import { type StdioServerHandle, StdioServerTransport, serveStdio } from "@modelcontextprotocol/server/stdio";
import type { McpEngine } from "../engine.js";
import type { LegacyInstances } from "./legacy-instances.js";
import type { Scope } from "./scope.js";
import { buildServer } from "./server.js";

export interface StdioOptions {
  readonly stdin?: Readable;
  readonly stdout?: Writable;
}

/** Serves `scope` over stdio until the client closes stdin; `onClosed` is called then. */
export function serveOverStdio(
  engine: McpEngine,
  scope: Scope,
  instances: LegacyInstances,
  options: StdioOptions,
  onClosed: () => void,
): StdioServerHandle {
  const transport = new StdioServerTransport(options.stdin, options.stdout, {
    maxBufferSize: engine.config.maxMessageBytes,
  });
  const handle = serveStdio(
    ({ era }) => {
      const server = buildServer(engine, scope, era);
      if (era === "legacy") instances.add(server);
      return server;
    },
    { transport, onerror: (error) => engine.log.debug({ err: error }, "MCP stdio error") },
  );
  // serveStdio owns the transport's callbacks; the end of stdin is seen on the stream itself.
  (options.stdin ?? process.stdin).once("end", onClosed);
  return handle;
}
