// An MCP server on the official Python SDK (testdata/mcp/py_mcp_server.py) mounted into the
// real host over stdio, called by the TypeScript client like any host tool: namespaced and
// filtered, streamed, replayed under a request id, limited, and reported by health.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { BridgeError, ErrorType, ToolBridgeClient } from "@toolbridge/client";
import { HealthCheckResponse_ServingStatus, HealthClient } from "../src/gen/grpc/health/v1/health.js";
import { type HostProcess, REPO_ROOT, startHost } from "./support/host-process.js";
import { waitUntil } from "./support/wait.js";
import { PYTHON } from "./support/workers.js";

const SERVER = `${REPO_ROOT}testdata/mcp/py_mcp_server.py`;

function mountHealth(target: string, mount: string): Promise<boolean> {
  const client = new HealthClient(target, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    client.check({ service: `toolbridge.mcp.${mount}` }, (error, response) => {
      client.close();
      if (error !== null) reject(error);
      else resolve(response.status === HealthCheckResponse_ServingStatus.SERVING);
    });
  });
}

describe("a mounted MCP server, from the TypeScript client", () => {
  let dir: string;
  let events: string;
  let host: HostProcess;
  let client: ToolBridgeClient;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "toolbridge-mcp-mount-"));
    events = join(dir, "events");
    writeFileSync(events, "");
    const config = join(dir, "host.json");
    const server = { command: PYTHON, args: [SERVER], env: { MCP_TEST_EVENTS: events } };
    writeFileSync(
      config,
      JSON.stringify({
        mcpServers: {
          py: {
            ...server,
            allow: ["add", "forecast", "slow", "steps"],
            streaming: ["steps"],
            maxConcurrentCalls: 1,
          },
        },
      }),
    );
    host = await startHost({ config }, []);
    client = new ToolBridgeClient(host.target);
    await client.initializeSession();
  });

  after(async () => {
    client.close();
    assert.equal(await host.stop(), 0, host.stderr());
    rmSync(dir, { recursive: true, force: true });
  });

  it("lists the allowed tools under the server's namespace, and reports the mount healthy", async () => {
    const names = (await client.listTools()).map((spec) => spec.name).sort();
    assert.deepEqual(names, ["py__add", "py__forecast", "py__slow", "py__steps"]);
    assert.match(host.stdout(), /toolbridge mounted MCP server py: py__add, /);
    assert.equal(await mountHealth(host.target, "py"), true);
  });

  it("calls and streams them like the host's own tools", async () => {
    assert.deepEqual(await client.executeTool("py__forecast", { city: "Quito" }), {
      city: "Quito",
      celsius: 21.5,
    });
    const chunks = [];
    for await (const chunk of client.streamTool("py__steps", { count: 2 })) chunks.push(chunk);
    assert.deepEqual(chunks, [
      { progress: 1, total: 2, message: "step 1" },
      { progress: 2, total: 2, message: "step 2" },
      { result: "2 steps" },
    ]);
  });

  it("answers a call repeated under its request id from the record, without calling the server again", async () => {
    const first = await client.executeTool(
      "py__slow",
      { seconds: 0, tag: "replayed" },
      { requestId: "mcp-replay-1" },
    );
    const again = await client.executeTool(
      "py__slow",
      { seconds: 0, tag: "replayed" },
      { requestId: "mcp-replay-1" },
    );
    assert.deepEqual([first, again], [{ result: "done" }, { result: "done" }]);
    const started = readFileSync(events, "utf8")
      .split("\n")
      .filter((line) => line === "started replayed");
    assert.equal(started.length, 1);
  });

  it("applies the mount's limits before the server is called", async () => {
    const holding = client.executeTool("py__slow", { seconds: 30, tag: "holding" });
    holding.catch(() => {});
    await waitUntil(
      () => readFileSync(events, "utf8").includes("started holding"),
      "the first call started",
      {
        tries: 1000,
      },
    );
    await assert.rejects(
      client.executeTool("py__slow", { seconds: 0, tag: "second" }),
      (error: unknown) => error instanceof BridgeError && error.type === ErrorType.ConcurrencyLimitExceeded,
    );
    assert.ok(!readFileSync(events, "utf8").includes("started second"));
  });
});
