#!/usr/bin/env node
/**
 * toolbridge serve --tools ./my-tools.ts [--port 50051] [--config file.json] [...]
 * toolbridge mcp --tools ./my-tools.ts [--session <id>] [...]
 *
 * Loads modules that register tools, then serves them until SIGTERM/SIGINT (serve), or to
 * the MCP client on stdin/stdout until it closes stdin (mcp).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { extname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { BridgeError } from "@toolbridge/core";
import { CONFIG_KEYS, envName, flagName, type HostConfigInput, resolveConfig } from "./config.js";
import { ToolBridgeHost } from "./host.js";
import { Tool } from "./tools/define.js";

const VERSION = (createRequire(import.meta.url)("../package.json") as { version: string }).version;

function usage(): string {
  const flags = CONFIG_KEYS.map((key) => `  --${flagName(key).padEnd(26)} env ${envName(key)}`).join("\n");
  return `Usage: toolbridge serve --tools <module> [--tools <module> ...] [options]
       toolbridge serve --workers N --worker-module <python module> [--tools <module> ...] [options]
       toolbridge mcp --tools <module> [--session <id>] [options]

Starts a toolbridge host serving the tools that the given modules register, and with
--workers, N supervised Python workers serving the @toolbridge.tool functions of
--worker-module (comma-separated modules, importable from the working directory).
'mcp' serves the same tools to one MCP client over stdin/stdout (Claude Desktop, Cursor, ...);
logs go to stderr, and the gRPC port is a private Unix socket unless --host or --port is given.
--session <id> works inside that toolbridge session. Either command mounts the MCP servers
of the mcpServers key (docs/mcp.md).
A tools module (JavaScript or TypeScript) exports one of:
  export default function (host) { host.registerTool(defineTool({...})) }
  export const tools = [defineTool({...}), ...]

Options (each also settable in a JSON config file or an environment variable):
  --config <file>              JSON file with any of the keys below (env TOOLBRIDGE_CONFIG)
${flags}
  --help, --version`;
}

class UsageError extends Error {}

async function loadToolsModule(host: ToolBridgeHost, path: string): Promise<void> {
  const file = resolve(path);
  if ([".ts", ".mts", ".cts"].includes(extname(file))) {
    // TypeScript tool modules run as they are; tsx compiles them on import.
    const { register } = await import("tsx/esm/api");
    register();
  }
  let module: Record<string, unknown>;
  try {
    module = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (error) {
    throw new UsageError(`cannot load tools module ${path}: ${(error as Error).message}`);
  }
  const entry = module.default ?? module.register;
  if (typeof entry === "function") {
    await (entry as (host: ToolBridgeHost) => unknown)(host);
    return;
  }
  const tools = Array.isArray(module.tools)
    ? module.tools
    : Array.isArray(module.default)
      ? module.default
      : undefined;
  if (tools?.every((t) => t instanceof Tool)) {
    host.registerTool(tools as Tool[]);
    return;
  }
  throw new UsageError(
    `tools module ${path} exports neither a default function (host) => {...} nor \`tools\`, an array of defineTool(...)`,
  );
}

async function main(argv: string[]): Promise<number> {
  const options: Record<string, { type: "string"; multiple?: boolean }> = {
    tools: { type: "string", multiple: true },
    config: { type: "string" },
    session: { type: "string" },
  };
  for (const key of CONFIG_KEYS) options[flagName(key)] = { type: "string" };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      options: { ...options, help: { type: "boolean" }, version: { type: "boolean" } },
      allowPositionals: true,
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  if (values.version === true) {
    process.stdout.write(`toolbridge ${VERSION}\n`);
    return 0;
  }
  const command = positionals[0];
  if ((command !== "serve" && command !== "mcp") || positionals.length > 1) {
    throw new UsageError(`expected the command 'serve' or 'mcp', got '${positionals.join(" ")}'`);
  }
  if (command === "serve" && values.session !== undefined) {
    throw new UsageError(
      "--session is for 'toolbridge mcp'; MCP clients of 'serve' name a session in the URL",
    );
  }
  if (command === "mcp") sendConsoleToStderr();
  const modules = (values.tools as string[] | undefined) ?? [];

  const flags: HostConfigInput = {};
  for (const key of CONFIG_KEYS) {
    const value = values[flagName(key)];
    if (typeof value === "string") (flags as Record<string, string>)[key] = value;
  }
  let socketDir: string | undefined;
  if (command === "mcp" && flags.host === undefined && flags.port === undefined) {
    // Several MCP clients may each start one: a private socket never collides.
    socketDir = mkdtempSync(join(tmpdir(), "toolbridge-mcp-"));
    flags.host = `unix:${join(socketDir, "host.sock")}`;
  }
  const config = resolveConfig({ file: values.config as string | undefined, env: process.env, flags });
  if (modules.length === 0 && config.workers === 0 && Object.keys(config.mcpServers).length === 0) {
    throw new UsageError(
      `${command} needs at least one --tools <module>, Python workers (--workers N --worker-module M) ` +
        "or MCP servers to mount (mcpServers)",
    );
  }
  const host = new ToolBridgeHost(config);
  for (const module of modules) await loadToolsModule(host, module);
  if (command === "mcp") return serveMcp(host, values.session as string | undefined, socketDir);
  host.handleSignals();
  const address = await host.start();
  // Printed before the "serving" line, which scripts and tests wait for.
  for (const line of startupLines(host)) process.stdout.write(`${line}\n`);
  process.stdout.write(
    `toolbridge serving on ${address.target} with ${host.toolNames().length} tools: ${host.toolNames().join(", ")}\n`,
  );
  return -1;
}

/** What the CLI reports about a started host besides its address. */
function startupLines(host: ToolBridgeHost): string[] {
  const lines: string[] = [];
  if (host.metricsUrl !== undefined) lines.push(`toolbridge metrics on ${host.metricsUrl}`);
  if (host.mcpUrl !== undefined) lines.push(`toolbridge mcp on ${host.mcpUrl}`);
  for (const mount of host.mcpMounts()) {
    lines.push(
      mount.state === "connected"
        ? `toolbridge mounted MCP server ${mount.name}: ${mount.tools.join(", ") || "no tools"}`
        : `toolbridge MCP server ${mount.name} not connected yet (${mount.lastError}); retrying`,
    );
  }
  const store = host.storeDescription;
  lines.push(
    store === "memory"
      ? "toolbridge store: memory (sessions end with this process)"
      : `toolbridge store: ${store} (shared by every host using it; sessions outlive a restart)`,
  );
  if (host.nodeId !== undefined) lines.push(`toolbridge node: ${host.nodeId}`);
  const pool = host.workers.state();
  if (pool.size > 0) {
    const pids = pool.workers.map((worker) => worker.pid).join(",");
    lines.push(
      `toolbridge workers ${pool.workers.length} ready (pids ${pids}) serving ${host.workers.toolSpecs.map((t) => t.name).join(", ")}`,
    );
  }
  return lines;
}

/**
 * `toolbridge mcp`: the host serving one MCP client on stdin/stdout until the client closes
 * stdin (or a signal), then stopping. Everything it reports goes to stderr.
 */
async function serveMcp(host: ToolBridgeHost, sessionId: string | undefined, socketDir: string | undefined) {
  const stop = () => {
    host.stop().then(
      () => {
        if (socketDir !== undefined) rmSync(socketDir, { recursive: true, force: true });
        process.exit(0);
      },
      () => process.exit(1),
    );
  };
  host.handleSignals(stop);
  await host.start();
  for (const line of startupLines(host)) process.stderr.write(`${line}\n`);
  host.serveMcpStdio(sessionId === undefined ? {} : { sessionId }, stop);
  process.stderr.write(
    `toolbridge serving MCP on stdio with ${host.toolNames().length} tools: ${host.toolNames().join(", ")}\n`,
  );
  return -1;
}

/** Tools that print with console.log must not write into the MCP stream on stdout. */
function sendConsoleToStderr(): void {
  const toStderr = (...args: unknown[]) => console.error(...args);
  console.log = toStderr;
  console.info = toStderr;
  console.debug = toStderr;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`toolbridge: ${message}\n`);
    if (error instanceof UsageError) process.stderr.write("Run 'toolbridge --help' for usage.\n");
    process.exit(error instanceof UsageError || error instanceof BridgeError ? 2 : 1);
  },
);
