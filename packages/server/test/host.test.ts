// The host's own surface: config layering, tool definitions, the in-process API,
// the CLI's error handling, standard health and reflection.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { ToolBridgeClient } from "@toolbridge/client";
import {
  BridgeError,
  DEFAULT_CONFIG,
  defineTool,
  ErrorType,
  resolveConfig,
  type SessionEnded,
  ToolBridgeHost,
} from "@toolbridge/server";
import { pino } from "pino";
import { z } from "zod";
import { HealthCheckResponse_ServingStatus, HealthClient } from "../src/gen/grpc/health/v1/health.js";
import {
  ServerReflectionClient,
  type ServerReflectionResponse,
} from "../src/gen/grpc/reflection/v1/reflection.js";
import { CLI, REPO_ROOT } from "./support/host-process.js";

const quiet = pino({ level: "silent" });

function bridgeError(type: string, pattern?: RegExp) {
  return (error: unknown) =>
    error instanceof BridgeError &&
    error.type === type &&
    (pattern === undefined || pattern.test(error.message));
}

describe("config", () => {
  it("has the documented defaults", () => {
    assert.equal(DEFAULT_CONFIG.port, 50051);
    assert.equal(DEFAULT_CONFIG.host, "127.0.0.1");
    assert.equal(DEFAULT_CONFIG.sessionTimeoutMs, 300_000);
    assert.equal(DEFAULT_CONFIG.maxConcurrentSessions, 1000);
    assert.equal(DEFAULT_CONFIG.toolTimeoutMs, 30_000);
    assert.equal(DEFAULT_CONFIG.streamIdleTimeoutMs, 30_000);
    assert.equal(DEFAULT_CONFIG.streamTotalTimeoutMs, 600_000);
    assert.equal(DEFAULT_CONFIG.maxMessageBytes, 10 * 1024 * 1024);
    assert.equal(DEFAULT_CONFIG.keepaliveTimeMs, 30_000);
    assert.equal(DEFAULT_CONFIG.keepaliveTimeoutMs, 10_000);
  });

  it("layers file < environment < flags", () => {
    const dir = mkdtempSync(join(tmpdir(), "toolbridge-config-"));
    const file = join(dir, "toolbridge.json");
    writeFileSync(
      file,
      JSON.stringify({ port: 6000, toolTimeoutMs: 1234, streamIdleTimeoutMs: 50, host: "::1" }),
    );
    const config = resolveConfig({
      file,
      env: {
        TOOLBRIDGE_PORT: "7000",
        TOOLBRIDGE_MAX_CONCURRENT_SESSIONS: "5",
        TOOLBRIDGE_STREAM_IDLE_TIMEOUT_MS: "60",
        TOOLBRIDGE_STREAM_TOTAL_TIMEOUT_MS: "5000",
      },
      flags: { port: "8000", streamTotalTimeoutMs: "7000" },
    });
    assert.equal(config.streamIdleTimeoutMs, 60);
    assert.equal(config.streamTotalTimeoutMs, 7000);
    assert.equal(config.port, 8000);
    assert.equal(config.maxConcurrentSessions, 5);
    assert.equal(config.toolTimeoutMs, 1234);
    assert.equal(config.host, "::1");
    assert.equal(config.sessionTimeoutMs, 300_000);
    assert.equal(resolveConfig({ env: { TOOLBRIDGE_CONFIG: file } }).port, 6000);
  });

  it("takes the store as memory or a Redis URL, from the file, the environment or a flag", () => {
    assert.equal(DEFAULT_CONFIG.store, "memory");
    assert.equal(
      resolveConfig({ env: { TOOLBRIDGE_STORE: "redis://127.0.0.1:6379/2" } }).store,
      "redis://127.0.0.1:6379/2",
    );
    assert.equal(
      resolveConfig({ flags: { store: "rediss://cache.internal:6380/0" } }).store,
      "rediss://cache.internal:6380/0",
    );
    assert.throws(
      () => resolveConfig({ flags: { store: "mysql://db" } }),
      bridgeError(ErrorType.ValidationError, /flag.*'store'.*redis:\/\/host:port\/db/),
    );
    assert.throws(
      () => new ToolBridgeHost({ store: "redis://" }),
      bridgeError(ErrorType.ValidationError, /'store'/),
    );
  });

  it("names the layer and key of a bad value", () => {
    assert.throws(
      () => resolveConfig({ env: { TOOLBRIDGE_PORT: "http" } }),
      bridgeError(ErrorType.ValidationError, /environment variable.*'port'/),
    );
    assert.throws(
      () => resolveConfig({ flags: { port: "70000" } }),
      bridgeError(ErrorType.ValidationError, /flag.*'port'/),
    );
    const dir = mkdtempSync(join(tmpdir(), "toolbridge-config-"));
    const file = join(dir, "bad.json");
    writeFileSync(file, JSON.stringify({ prot: 1 }));
    assert.throws(
      () => resolveConfig({ file }),
      bridgeError(ErrorType.ValidationError, /unknown key\(s\) prot/),
    );
    assert.throws(
      () => resolveConfig({ file: join(dir, "missing.json") }),
      bridgeError(ErrorType.ValidationError, /cannot read/),
    );
  });
});

describe("defineTool", () => {
  it("refuses bad names, non-object schemas and bad timeouts", () => {
    const handler = () => 1;
    assert.throws(() => defineTool({ name: "has space", description: "", handler }), /invalid tool name/);
    assert.throws(
      () => defineTool({ name: "x", description: "", parameters: z.string() as never, handler }),
      /zod object schema/,
    );
    assert.throws(() => defineTool({ name: "x", description: "", timeoutMs: 0, handler }), /timeoutMs/);
  });

  it("refuses two global tools with one name unless replacing", () => {
    const host = new ToolBridgeHost({ logger: quiet });
    const tool = defineTool({ name: "same", description: "", handler: () => 1 });
    host.registerTool(tool);
    assert.throws(() => host.registerTool(tool), /already registered globally/);
    host.registerTool(tool, { replace: true });
  });
});

describe("in-process host", () => {
  it("serves session tools that shadow global ones and die with the session", async () => {
    const host = new ToolBridgeHost({ host: "127.0.0.1", port: 0, logger: quiet });
    host.registerTool(defineTool({ name: "who", description: "global", handler: () => "global" }));
    const ended: SessionEnded[] = [];
    host.onSessionEnded((event) => ended.push(event));
    const address = await host.start();
    try {
      const session = await host.createSession("app-session", { owner: "ts" });
      assert.equal(session.created, true);
      await host.registerSessionTool(
        "app-session",
        defineTool({
          name: "who",
          description: "session",
          handler: (_args, ctx) => `session ${ctx.sessionId}`,
        }),
      );
      await assert.rejects(
        host.registerSessionTool(
          "no-such-session",
          defineTool({ name: "t", description: "", handler: () => 1 }),
        ),
        bridgeError(ErrorType.SessionNotFound),
      );

      const client = new ToolBridgeClient(address.target);
      const attached = await client.initializeSession("app-session");
      assert.equal(attached.created, false);
      assert.equal(attached.toolCount, 1);
      assert.equal(await client.executeTool("who"), "session app-session");
      assert.deepEqual(
        (await client.listTools()).map((t) => [t.name, t.scope, t.description]),
        [["who", "session", "session"]],
      );
      assert.equal((await client.sessionInfo()).metadata.owner, "ts");

      await host.cleanupSession("app-session");
      assert.deepEqual(ended, [{ id: "app-session", reason: "cleanup" }]);
      const again = await host.createSession("app-session");
      assert.equal(again.created, true);
      assert.equal(await client.executeTool("who"), "global");
      client.close();
    } finally {
      await host.stop();
    }
  });

  it("refuses invalid session ids", async () => {
    const host = new ToolBridgeHost({ logger: quiet });
    await assert.rejects(
      host.createSession("has spaces"),
      bridgeError(ErrorType.ValidationError, /invalid session id/),
    );
    await assert.rejects(host.createSession("x".repeat(129)), bridgeError(ErrorType.ValidationError));
    assert.match((await host.createSession()).id, /^session_/);
  });

  it("checks results against an output schema", async () => {
    const host = new ToolBridgeHost({ host: "127.0.0.1", port: 0, logger: quiet });
    host.registerTool(
      defineTool({
        name: "typed",
        description: "",
        output: z.number(),
        handler: () => "not a number" as unknown as number,
      }),
    );
    const address = await host.start();
    const client = new ToolBridgeClient(address.target);
    await client.initializeSession();
    await assert.rejects(
      client.executeTool("typed"),
      bridgeError(ErrorType.ToolExecutionError, /output schema/),
    );
    assert.ok((await client.listTools())[0]?.outputSchema);
    client.close();
    await host.stop();
  });

  it("serves the standard health service and reflection", async () => {
    const host = new ToolBridgeHost({ host: "127.0.0.1", port: 0, logger: quiet });
    const { target } = await host.start();
    try {
      const health = new HealthClient(target, grpc.credentials.createInsecure());
      const status = await new Promise<unknown>((resolve, reject) =>
        health.check({ service: "toolbridge.v1.ToolBridge" }, (e, r) => (e ? reject(e) : resolve(r))),
      );
      assert.deepEqual(status, { status: HealthCheckResponse_ServingStatus.SERVING });
      health.close();

      const reflection = new ServerReflectionClient(target, grpc.credentials.createInsecure());
      const call = reflection.serverReflectionInfo();
      const reply = await new Promise<ServerReflectionResponse>((resolve, reject) => {
        call.on("data", resolve);
        call.on("error", reject);
        call.write({ host: "", messageRequest: { $case: "listServices", value: "" } });
      });
      call.end();
      reflection.close();
      assert.equal(reply.messageResponse?.$case, "listServicesResponse");
      const names = reply.messageResponse.value.service.map((s) => s.name);
      assert.ok(names.includes("toolbridge.v1.ToolBridge"), names.join(","));
      assert.ok(names.includes("grpc.health.v1.Health"), names.join(","));
    } finally {
      await host.stop();
    }
  });
});

describe("CLI", () => {
  function run(...args: string[]) {
    return spawnSync(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, encoding: "utf8", timeout: 20_000 });
  }

  it("prints usage listing every flag with its environment variable", () => {
    const result = run("--help");
    assert.equal(result.status, 0);
    assert.match(result.stdout, /--session-timeout-ms\s+env TOOLBRIDGE_SESSION_TIMEOUT_MS/);
  });

  it("fails with exit 2 and a clear message on bad input", () => {
    const noTools = run("serve");
    assert.equal(noTools.status, 2);
    assert.match(noTools.stderr, /needs at least one --tools/);
    const missing = run("serve", "--tools", "does-not-exist.ts");
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /cannot load tools module does-not-exist.ts/);
    const badPort = run("serve", "--tools", "testdata/tools/test-tools.ts", "--port", "99999");
    assert.equal(badPort.status, 2);
    assert.match(badPort.stderr, /command-line flag: 'port'/);
    const dir = mkdtempSync(join(tmpdir(), "toolbridge-cli-"));
    writeFileSync(join(dir, "empty.mjs"), "export const nothing = 1;\n");
    const empty = run("serve", "--tools", join(dir, "empty.mjs"));
    assert.equal(empty.status, 2);
    assert.match(empty.stderr, /exports neither a default function/);
  });
});
