#!/usr/bin/env node
/**
 * toolbridge serve --tools ./my-tools.ts [--port 50051] [--config file.json] [...]
 *
 * Loads modules that register tools, then serves them until SIGTERM/SIGINT.
 */
import { realpathSync } from "node:fs";
import { createRequire, register } from "node:module";
import { extname, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { BridgeError } from "@toolbridge/core";
import { CONFIG_KEYS, envName, flagName, type HostConfigInput, resolveConfig } from "./config.js";
import { ToolBridgeHost } from "./host.js";
import { Tool } from "./tools/define.js";
import type { ToolsModuleHooksData } from "./tools-module-hooks.js";

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
A .ts module is loaded as an ES module whatever the nearest package.json says.

Options (each also settable in a JSON config file or an environment variable):
  --config <file>              JSON file with any of the keys below (env TOOLBRIDGE_CONFIG)
${flags}
  --help, --version`;
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
    throw new UsageError(`expected the command 'serve', got '${positionals.join(" ")}'`);
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
  await prepareTypeScript(modules.map(modulePath));
  for (const module of modules) await loadToolsModule(host, module);
  host.handleSignals();
  const address = await host.start();
  // Printed before the "serving" line, which scripts and tests wait for.
  if (host.metricsUrl !== undefined) process.stdout.write(`toolbridge metrics on ${host.metricsUrl}\n`);
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
