#!/usr/bin/env node
/**
 * toolbridge serve --tools ./my-tools.ts [--port 50051] [--config file.json] [...]
 *
 * Loads modules that register tools, then serves them until SIGTERM/SIGINT.
 */
import { createRequire } from "node:module";
import { extname, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { BridgeError } from "@toolbridge/core";
import { CONFIG_KEYS, envName, flagName, type HostConfigInput, resolveConfig } from "./config.js";
import { ToolBridgeHost } from "./host.js";
import { INSPECT_USAGE, inspectCommand } from "./inspector/inspect-command.js";
import { Tool } from "./tools/define.js";

const VERSION = (createRequire(import.meta.url)("../package.json") as { version: string }).version;

function usage(): string {
  const flags = CONFIG_KEYS.map((key) => `  --${flagName(key).padEnd(26)} env ${envName(key)}`).join("\n");
  return `Usage: toolbridge serve --tools <module> [--tools <module> ...] [options]
       toolbridge serve --workers N --worker-module <python module> [--tools <module> ...] [options]

Starts a toolbridge host serving the tools that the given modules register, and with
--workers, N supervised Python workers serving the @toolbridge.tool functions of
--worker-module (comma-separated modules, importable from the working directory).
A tools module (JavaScript or TypeScript) exports one of:
  export default function (host) { host.registerTool(defineTool({...})) }
  export const tools = [defineTool({...}), ...]

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
  if (argv[0] === "inspect") return inspect(argv.slice(1));
  const options: Record<string, { type: "string"; multiple?: boolean }> = {
    tools: { type: "string", multiple: true },
    config: { type: "string" },
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
  if (positionals[0] !== "serve" || positionals.length > 1) {
    throw new UsageError(`expected the command 'serve' or 'inspect', got '${positionals.join(" ")}'`);
  }
  const modules = (values.tools as string[] | undefined) ?? [];

  const flags: HostConfigInput = {};
  for (const key of CONFIG_KEYS) {
    const value = values[flagName(key)];
    if (typeof value === "string") (flags as Record<string, string>)[key] = value;
  }
  const config = resolveConfig({ file: values.config as string | undefined, env: process.env, flags });
  if (modules.length === 0 && config.workers === 0) {
    throw new UsageError(
      "serve needs at least one --tools <module>, or Python workers (--workers N --worker-module M)",
    );
  }
  const host = new ToolBridgeHost(config);
  for (const module of modules) await loadToolsModule(host, module);
  host.handleSignals();
  const address = await host.start();
  // Printed before the "serving" line, which scripts and tests wait for.
  if (host.metricsUrl !== undefined) process.stdout.write(`toolbridge metrics on ${host.metricsUrl}\n`);
  if (host.inspectorUrl !== undefined) process.stdout.write(`toolbridge inspector on ${host.inspectorUrl}\n`);
  const store = host.storeDescription;
  process.stdout.write(
    store === "memory"
      ? "toolbridge store: memory (sessions end with this process)\n"
      : `toolbridge store: ${store} (shared by every host using it; sessions outlive a restart)\n`,
  );
  if (host.nodeId !== undefined) process.stdout.write(`toolbridge node: ${host.nodeId}\n`);
  const pool = host.workers.state();
  if (pool.size > 0) {
    const pids = pool.workers.map((worker) => worker.pid).join(",");
    process.stdout.write(
      `toolbridge workers ${pool.workers.length} ready (pids ${pids}) serving ${host.workers.toolSpecs.map((t) => t.name).join(", ")}\n`,
    );
  }
  process.stdout.write(
    `toolbridge serving on ${address.target} with ${host.toolNames().length} tools: ${host.toolNames().join(", ")}\n`,
  );
  return -1;
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
