// The README's `npx toolbridge serve --tools ./tools.ts` in a new npm project: the packages
// packed with `npm pack` (what npm would publish), installed into a directory made with
// `npm init -y` (CommonJS by default) and, second, into the same project made an ES module
// one. The same TypeScript tools module is served both ways, and a client calls its tool.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { ToolBridgeClient } from "@toolbridge/client";
import { REPO_ROOT } from "./support/host-process.js";

const run = promisify(execFile);

/** npm as a user runs it: its cache first (the registry only for what the cache lacks), no notices. */
const NPM_ENV = {
  ...process.env,
  npm_config_prefer_offline: "true",
  npm_config_update_notifier: "false",
  npm_config_audit: "false",
  npm_config_fund: "false",
};

/** Written the way the README writes tools: ES module syntax, typed, importing the packages. */
const TOOLS_MODULE = `import { defineTool } from "@toolbridge/server";
import { z } from "zod";

export const tools = [
  defineTool({
    name: "add",
    description: "Adds two numbers.",
    parameters: z.object({ a: z.number(), b: z.number() }),
    handler: ({ a, b }: { a: number; b: number }) => a + b,
  }),
];
`;

/** A .ts module written as CommonJS: the CLI must say what to change. */
const COMMONJS_TOOLS_MODULE = `const { defineTool } = require("@toolbridge/server");
module.exports = { tools: [] };
`;

interface Served {
  readonly target: string;
  /** SIGTERM to the command's process group; resolves with everything it printed once all of it exited. */
  stop(): Promise<string>;
}

/** `npx toolbridge serve ...` in `cwd`, until it prints its serving line (or exits first). */
async function serve(cwd: string, args: readonly string[]): Promise<Served> {
  // A process group of its own: npx does not pass SIGTERM on to the host it started.
  const child = spawn("npx", ["toolbridge", "serve", ...args], {
    cwd,
    env: NPM_ENV,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let output = "";
  // "close": every holder of the output pipes is gone, the host npx started included.
  const closed = once(child, "close");
  const target = await new Promise<string>((resolve, reject) => {
    const onData = (text: string) => {
      output += text;
      const match = /serving on (\S+) with/.exec(output);
      if (match?.[1] !== undefined) resolve(match[1]);
    };
    child.stdout.setEncoding("utf8").on("data", onData);
    child.stderr.setEncoding("utf8").on("data", onData);
    child.once("exit", (code) =>
      reject(new Error(`npx toolbridge exited with ${code} before serving:\n${output}`)),
    );
  });
  return {
    target,
    async stop() {
      try {
        process.kill(-(child.pid ?? 0), "SIGTERM");
      } catch {
        // already gone
      }
      await closed;
      return output;
    },
  };
}

/** Runs `npx toolbridge serve ...` expecting it to exit; resolves with its exit code and output. */
async function serveFails(cwd: string, args: readonly string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run("npx", ["toolbridge", "serve", ...args], { cwd, env: NPM_ENV });
    assert.fail(`expected npx toolbridge to fail, it printed:\n${stdout}${stderr}`);
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    if (typeof failed.code !== "number") throw error;
    return { code: failed.code, output: `${failed.stdout ?? ""}${failed.stderr ?? ""}` };
  }
}

async function callAdd(target: string): Promise<unknown> {
  const client = new ToolBridgeClient(target);
  try {
    await client.initializeSession();
    return await client.executeTool("add", { a: 2, b: 3 });
  } finally {
    client.close();
  }
}

describe("npx toolbridge in a new npm project with the packed packages", () => {
  const workdir = mkdtempSync(join(tmpdir(), "toolbridge-package-"));
  const project = join(workdir, "app");

  before(
    async () => {
      const packs = join(workdir, "packs");
      mkdirSync(packs);
      const tarballs: string[] = [];
      for (const name of ["core", "server", "client"]) {
        const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", packs], {
          cwd: join(REPO_ROOT, "packages", name),
          env: NPM_ENV,
        });
        const [packed] = JSON.parse(stdout) as { filename: string }[];
        assert.ok(packed !== undefined, `npm pack printed no file: ${stdout}`);
        tarballs.push(join(packs, packed.filename));
      }
      mkdirSync(project);
      await run("npm", ["init", "-y"], { cwd: project, env: NPM_ENV });
      // The registry serves the packages' own dependencies; a user adds zod to write tools.
      await run("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error", ...tarballs, "zod@^4"], {
        cwd: project,
        env: NPM_ENV,
        maxBuffer: 64 * 1024 * 1024,
      });
      writeFileSync(join(project, "tools.ts"), TOOLS_MODULE);
      writeFileSync(join(project, "commonjs-tools.ts"), COMMONJS_TOOLS_MODULE);
    },
    // Packing and installing: a bound for a loaded machine and a cold npm cache, not a speed claim.
    { timeout: 600_000 },
  );
  after(() => rmSync(workdir, { recursive: true, force: true }));

  const packageType = () =>
    (JSON.parse(readFileSync(join(project, "package.json"), "utf8")) as { type?: string }).type;

  it("serves a .ts tools module in the CommonJS project npm init -y makes", async () => {
    assert.notEqual(packageType(), "module", "npm init -y made an ES module project");
    const host = await serve(project, ["--tools", "./tools.ts", "--port", "0"]);
    let output = "";
    try {
      assert.match(host.target, /^127\.0\.0\.1:\d+$/);
      assert.equal(await callAdd(host.target), 5);
    } finally {
      output = await host.stop();
    }
    assert.match(output, /serving on \S+ with 1 tools: add/);
    assert.match(output, /toolbridge host stopped/);
  });

  it("says what to change when a .ts tools module is written as CommonJS", async () => {
    const { code, output } = await serveFails(project, ["--tools", "./commonjs-tools.ts", "--port", "0"]);
    assert.equal(code, 2, output);
    assert.match(output, /cannot load tools module \.\/commonjs-tools\.ts: require is not defined/);
    assert.match(output, /use import\/export, or name it \.cts to keep CommonJS/);
  });

  it('serves the same module once the project says "type": "module"', async () => {
    await run("npm", ["pkg", "set", "type=module"], { cwd: project, env: NPM_ENV });
    assert.equal(packageType(), "module");
    const host = await serve(project, ["--tools", "./tools.ts", "--port", "0"]);
    try {
      assert.equal(await callAdd(host.target), 5);
    } finally {
      await host.stop();
    }
  });
});
