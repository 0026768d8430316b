#!/usr/bin/env node
/**
 * toolbridge serve --tools ./my-tools.ts [--port 50051] [--config file.json] [...]
 * toolbridge mcp --tools ./my-tools.ts [--session <id>] [...]
 * toolbridge inspect <address> [--token ...] [...]
 *
 * Loads modules that register tools, then serves them until SIGTERM/SIGINT (serve), or to
 * the MCP client on stdin/stdout until it closes stdin (mcp); or serves the web inspector
 * of a running host (inspect).
 */
import { mkdtempSync, realpathSync, rmSync } from "node:fs";
import { createRequire, register } from "node:module";
import { tmpdir } from "node:os";
import { extname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { BridgeError } from "@toolbridge/core";
import { CONFIG_KEYS, envName, flagName, type HostConfigInput, resolveConfig } from "./config.js";
import { ToolBridgeHost } from "./host.js";
import { INSPECT_USAGE, inspectCommand } from "./inspector/inspect-command.js";
import { Tool } from "./tools/define.js";
import type { ToolsModuleHooksData } from "./tools-module-hooks.js";

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
A .ts module is loaded as an ES module whatever the nearest package.json says.

Options (each also settable in a JSON config file or an environment variable):
  --config <file>              JSON file with any of the keys below (env TOOLBRIDGE_CONFIG)
${flags}
  --help, --version

${INSPECT_USAGE}`;
}

/** `toolbridge inspect <address>`: serves the inspector until SIGINT/SIGTERM. */
async function inspect(argv: string[]): Promise<number> {
  const gateway = await inspectCommand(argv, process.env);
  const stop = () => {
    void gateway.close().then(() => process.exit(0));
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  process.stdout.write(
    `toolbridge inspector for ${argv.find((arg) => !arg.startsWith("-")) ?? ""} on ${gateway.url}\n`,
  );
  process.stdout.write("open that URL in a browser; Ctrl-C stops the inspector\n");
  return -1;
}

class UsageError extends Error {}

/**
 * Makes TypeScript tools modules loadable: tsx compiles them on import, and a `.ts` one is an
 * ES module even in a CommonJS package (see tools-module-hooks.ts); `.mts` and `.cts` say
 * their format themselves.
 */
async function prepareTypeScript(files: readonly string[]): Promise<void> {
  const typescript = files.filter((file) => TYPESCRIPT.includes(extname(file)));
  if (typescript.length === 0) return;
  const { register: registerTsx } = await import("tsx/esm/api");
  registerTsx();
  const data: ToolsModuleHooksData = {
    esm: typescript.filter((file) => extname(file) === ".ts").map((file) => pathToFileURL(file).href),
  };
  register(new URL("./tools-module-hooks.js", import.meta.url), { data });
}

const TYPESCRIPT = [".ts", ".mts", ".cts"];

/** The module's absolute path as `import()` resolves it (symlinks followed). */
function modulePath(path: string): string {
  const file = resolve(path);
  try {
    return realpathSync(file);
  } catch {
    return file; // missing: the import says so
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** What to change when a tools module failed to load for its module format; "" otherwise. */
function formatHint(file: string, error: unknown): string {
  const message = error instanceof Error ? error.message : "";
  const extension = extname(file);
  if (extension === ".ts" && /\b(require|module|exports) is not defined\b/.test(message)) {
    return "; a .ts tools module is loaded as an ES module: use import/export, or name it .cts to keep CommonJS";
  }
  if (extension === ".cts" && /is not in cache/.test(message)) {
    // tsx on Node 20 cannot require() an ES module (such as @toolbridge/server) from a .cts file.
    return "; a .cts module cannot require() @toolbridge/server here: name it .ts and use import/export";
  }
  if (extension === ".js" && /Cannot use import statement|Unexpected token 'export'/.test(message)) {
    return (
      '; Node loads a .js file as CommonJS unless the nearest package.json says "type": "module": ' +
      "name it .mjs, or add that line"
    );
  }
  return "";
}

async function loadToolsModule(host: ToolBridgeHost, path: string): Promise<void> {
  const file = modulePath(path);
  let namespace: Record<string, unknown>;
  try {
    namespace = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (error) {
    const reason = (error as Error).message;
    throw new UsageError(`cannot load tools module ${path}: ${reason}${formatHint(file, error)}`);
  }
  // A CommonJS module's `module.exports = { tools: [...] }` arrives as its default export.
  const { default: cjs } = namespace;
  const module =
    namespace.tools === undefined && namespace.register === undefined && isRecord(cjs) ? cjs : namespace;
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
  if (argv[0] === "inspect") return inspect(argv.slice(1));
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
    throw new UsageError(`expected the command 'serve', 'mcp' or 'inspect', got '${positionals.join(" ")}'`);
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
  await prepareTypeScript(modules.map(modulePath));
  for (const module of modules) await loadToolsModule(host, module);
  if (command === "mcp") return serveMcp(host, values.session as string | undefined, socketDir);
  host.handleSignals();
  const address = await host.start();
  // Printed before the "serving" line, which scripts and tests wait for.
  for (const line of startupLines(host))
    process.stdout.write(`${line}
`);
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
  if (host.inspectorUrl !== undefined) lines.push(`toolbridge inspector on ${host.inspectorUrl}`);
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
  await host.serveMcpStdio(sessionId === undefined ? {} : { sessionId }, stop);
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
