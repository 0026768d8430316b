// The README's `npx toolbridge ...` in a fresh checkout: clone this repository, `make build`
// (npm ci and the TypeScript compiler; no Python needed), then run the command exactly as the
// README writes it. It must resolve to the checkout's own CLI, never ask the npm registry.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { REPO_ROOT } from "./support/host-process.js";

const run = promisify(execFile);

/** The environment of a user in the clone: npm may use its cache, and never needs the registry for this. */
function userEnv(): NodeJS.ProcessEnv {
  return { ...process.env, npm_config_prefer_offline: "true", npm_config_update_notifier: "false" };
}

describe("npx toolbridge in a fresh checkout", () => {
  const workdir = mkdtempSync(join(tmpdir(), "toolbridge-checkout-"));
  const checkout = join(workdir, "toolbridge");
  let isGitCheckout = true;

  before(async () => {
    try {
      await run("git", ["-C", REPO_ROOT, "rev-parse", "--git-dir"]);
    } catch {
      isGitCheckout = false; // e.g. an unpacked archive: there is nothing to clone
      return;
    }
    // The committed tree, as `git clone` gives it to a user.
    await run("git", ["clone", "--quiet", "--no-hardlinks", REPO_ROOT, checkout]);
    await run("make", ["build"], { cwd: checkout, env: userEnv(), maxBuffer: 64 * 1024 * 1024 });
  });
  after(() => rmSync(workdir, { recursive: true, force: true }));

  it("`npx toolbridge --help` lists the options", async (t) => {
    if (!isGitCheckout) return t.skip("not a git checkout");
    const { stdout } = await run("npx", ["toolbridge", "--help"], { cwd: checkout, env: userEnv() });
    assert.match(stdout, /^Usage: toolbridge serve --tools <module>/);
    assert.match(stdout, /--port\s+env TOOLBRIDGE_PORT/);
    const version = await run("npx", ["toolbridge", "--version"], { cwd: checkout, env: userEnv() });
    assert.equal(version.stdout.trim(), "toolbridge 0.1.0");
  });

  it("`npx toolbridge serve --tools ./my-tools.ts` serves the module's tools", async (t) => {
    if (!isGitCheckout) return t.skip("not a git checkout");
    // A process group of its own: npx does not pass SIGTERM on to the host it started.
    const host = spawn(
      "npx",
      [
        "toolbridge",
        "serve",
        "--tools",
        "./examples/tools/shop-tools.ts",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
      ],
      { cwd: checkout, env: userEnv(), stdio: ["ignore", "pipe", "pipe"], detached: true },
    );
    const stop = () => {
      try {
        process.kill(-(host.pid ?? 0), "SIGTERM");
      } catch {
        // already gone
      }
    };
    let output = "";
    host.stdout.setEncoding("utf8").on("data", (text: string) => {
      output += text;
      if (/serving on \S+ with/.test(output)) stop();
    });
    host.stderr.setEncoding("utf8").on("data", (text: string) => {
      output += text;
    });
    const exited = once(host, "exit");
    // A host that never serves must not keep the suite waiting (a bound, not a speed check).
    const bound = setTimeout(stop, 120_000);
    await exited;
    clearTimeout(bound);
    assert.match(
      output,
      /serving on 127\.0\.0\.1:\d+ with 4 tools: calculate, search_docs, read_doc, index_corpus/,
    );
  });
});
