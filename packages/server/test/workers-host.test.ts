// A host with Python workers: their tools are ordinary tools of every session (for clients,
// for TypeScript tools, for DSPy agents in other workers), and agents run on warm workers.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { ToolBridgeClient } from "@toolbridge/client";
import {
  type AgentEvent,
  BridgeError,
  defineTool,
  runPythonAgent,
  SessionVariableAgentStore,
  ToolBridgeHost,
  WORKERS_HEALTH_SERVICE,
} from "@toolbridge/server";
import { pino } from "pino";
import { z } from "zod";
import { REPO_ROOT } from "./support/host-process.js";
import { waitUntil } from "./support/wait.js";
import { PYTHON, WORKERS_DIR } from "./support/workers.js";

const TURNS = `${WORKERS_DIR}/agent_turns.json`;
const SERVING = 1;

/** grpc.health.v1.Health/Check for `service`; its two messages are one field each, encoded by hand. */
function standardHealth(target: string, service: string): Promise<number> {
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  const name = Buffer.from(service, "utf8");
  return new Promise<number>((resolve, reject) => {
    client.makeUnaryRequest(
      "/grpc.health.v1.Health/Check",
      () => Buffer.concat([Buffer.from([0x0a, name.length]), name]),
      (reply: Buffer) => (reply.length >= 2 ? (reply[1] ?? 0) : 0),
      {},
      (error, status) => {
        client.close();
        if (error !== null) reject(error);
        else resolve(status ?? 0);
      },
    );
  });
}

describe("a host with Python workers", () => {
  const host = new ToolBridgeHost({
    host: "127.0.0.1",
    port: 0,
    logger: pino({ level: "silent" }),
    workers: 2,
    workerModule: "pool_tools",
    workerHeartbeatMs: 200,
    // PYTHONPATH: where a team's LM module would be (testdata/agents/team_lm.py).
    workerPool: {
      python: PYTHON,
      cwd: WORKERS_DIR,
      env: { ...process.env, TOOLBRIDGE_LM: "", PYTHONPATH: `${REPO_ROOT}testdata/agents` },
    },
  });
  let client: ToolBridgeClient;
  let sessionId = "";

  before(async () => {
    host.registerTool(
      defineTool({
        name: "double_in_python",
        description: "A TypeScript tool that asks a Python tool.",
        parameters: z.object({ x: z.int() }),
        handler: ({ x }, ctx) => host.workers.call("add", { a: x, b: x }, { signal: ctx.signal }),
      }),
    );
    const address = await host.start();
    client = new ToolBridgeClient(address.target);
    sessionId = (await client.initializeSession()).sessionId;
    // Agent runs should find DSPy imported: that is what a warm worker is for.
    await waitUntil(
      () => host.workers.state().workers.every((worker) => worker.agentsReady),
      "every warm worker has DSPy imported",
      { tries: 1200, intervalMs: 50 },
    );
  });
  after(async () => {
    client.close();
    await host.stop();
  });

  it("lists the Python tools to clients with their JSON Schemas", async () => {
    const tools = await client.listTools();
    const add = tools.find((tool) => tool.name === "add");
    assert.ok(add !== undefined);
    assert.equal(add.description, "Adds two integers.");
    assert.deepEqual(
      add.parameters.map((p) => [p.name, p.type, p.required]),
      [
        ["a", "integer", true],
        ["b", "integer", false],
      ],
    );
    assert.equal(add.metadata.language, "python");
    assert.equal(tools.find((tool) => tool.name === "count")?.streaming, true);
  });

  it("serves Python tools to a client through the host, validated on the host", async () => {
    assert.equal(await client.executeTool("add", { a: 2, b: 3 }), 5);
    assert.equal(await client.executeTool("add", {}, { args: [4, 5] }), 9);
    await assert.rejects(
      client.executeTool("add", { a: "x" }),
      (e: unknown) => e instanceof BridgeError && e.type === "ValidationError" && e.details.field === "a",
    );
    await assert.rejects(
      client.executeTool("fail", { message: "bad" }),
      (e: unknown) =>
        e instanceof BridgeError && e.type === "ToolExecutionError" && e.details.exception === "KeyError",
    );
    const chunks: unknown[] = [];
    for await (const chunk of client.streamTool("count_sync", { n: 3 })) chunks.push(chunk);
    assert.deepEqual(chunks, [0, 1, 2]);
  });

  it("lets a TypeScript tool call a Python tool", async () => {
    assert.equal(await client.executeTool("double_in_python", { x: 21 }), 42);
  });

  it("times out a Python tool by the host's timeout, and Python sees the cancellation", async () => {
    await assert.rejects(
      client.executeTool("sleep", { ms: 60_000, marker: "host-timeout" }, { timeoutMs: 200 }),
      (e: unknown) => e instanceof BridgeError && e.type === "Timeout",
    );
    let seen: string[] = [];
    for (let i = 0; i < 100 && !seen.includes("sleep:host-timeout"); i++) {
      const all = await Promise.all(
        host.workers.state().workers.map((w) => host.workers.call("cancellations", {}, { affinity: w.name })),
      );
      seen = all.flat() as string[];
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.ok(seen.includes("sleep:host-timeout"), String(seen));
  });

  it("runs an agent on a warm worker, which calls a Python tool in the other worker through the host", async () => {
    const events: AgentEvent[] = [];
    const result = await host.workers.runAgent({
      sessionId,
      tools: ["whoami", "add"],
      inputs: { question: "What is 2 + 3?" },
      script: TURNS,
      onEvent: (event) => events.push(event),
    });
    assert.equal(result.status, "succeeded", result.error);
    assert.deepEqual(result.outputs, { answer: "5" });
    assert.deepEqual(
      events.flatMap((e) => (e.kind === "tool_call" ? [e.toolName] : [])),
      ["whoami", "add", "finish"],
    );
    // The run is recorded in the session exactly as a spawned worker records it.
    const run = await new SessionVariableAgentStore(host.variables(sessionId)).loadRun(result.runId);
    assert.equal(run.status, "succeeded");
    assert.deepEqual(
      run.steps.map((step) => step.toolName),
      ["whoami", "add", "finish"],
    );
    assert.equal(run.steps[1]?.observation, 5);
    const agentPid = Number(run.worker.split("@")[0]?.split(" ").pop());
    const toolPid = (run.steps[0]?.observation as { pid: number } | undefined)?.pid ?? -1;
    const pids = host.workers.state().workers.map((worker) => worker.pid);
    assert.ok(pids.includes(agentPid) && pids.includes(toolPid), `${run.worker} ${toolPid} ${pids}`);
    assert.notEqual(agentPid, toolPid, "the tool ran in the other worker");
  });

  it("runs a stored agent through runPythonAgent({ workers })", async () => {
    const first = await host.workers.runAgent({
      sessionId,
      tools: ["whoami", "add"],
      inputs: { question: "2 + 3?" },
      script: TURNS,
    });
    const again = await runPythonAgent({
      address: host.address?.target ?? "",
      sessionId,
      agentId: first.agentId,
      inputs: { question: "2 + 3 again?" },
      script: TURNS,
      workers: host.workers,
    });
    assert.equal(again.status, "succeeded");
    assert.equal(again.agentId, first.agentId);
    assert.notEqual(again.runId, first.runId);
    assert.equal(
      (await new SessionVariableAgentStore(host.variables(sessionId)).loadRun(again.runId)).inputs.question,
      "2 + 3 again?",
    );
  });

  it("runs an agent with the LM a factory of the user's builds", async () => {
    const result = await runPythonAgent({
      address: "",
      sessionId,
      tools: ["add"],
      inputs: { question: "What is 20 + 22?" },
      lmFactory: "team_lm:adding_lm",
      workers: host.workers,
    });
    assert.equal(result.status, "succeeded", result.error);
    assert.deepEqual(result.outputs, { answer: "42" });
    const run = await new SessionVariableAgentStore(host.variables(sessionId)).loadRun(result.runId);
    assert.equal(run.lm, "team/scripted-adder");
    await assert.rejects(
      host.workers.runAgent({ sessionId, inputs: { question: "?" }, lmFactory: "team_lm:broken" }),
      (e: unknown) =>
        e instanceof BridgeError &&
        e.type === "ValidationError" &&
        /the LM factory team_lm:broken failed: RuntimeError: TEAM_LM_KEY is not set/.test(e.message),
    );
  });

  it("rejects when no run can start: a session that does not exist, a tool that does not", async () => {
    await assert.rejects(
      host.workers.runAgent({ sessionId: "no-such-session", inputs: { question: "?" }, script: TURNS }),
      (e: unknown) => e instanceof BridgeError && e.type === "SessionNotFound",
    );
    await assert.rejects(
      runPythonAgent({
        address: "",
        sessionId,
        tools: ["no_such_tool"],
        inputs: { question: "?" },
        script: TURNS,
        workers: host.workers,
      }),
      (e: unknown) => e instanceof BridgeError && e.type === "ToolNotFound" && /no_such_tool/.test(e.message),
    );
  });

  it("reports the pool in health and metrics", async () => {
    const metrics = await host.metricsRegistry.metrics();
    assert.match(metrics, /toolbridge_workers\{state="idle"\} 2/);
    assert.match(metrics, /toolbridge_workers\{state="starting"\} 0/);
    assert.equal(WORKERS_HEALTH_SERVICE, "toolbridge.v1.ToolBridgeWorker");
    assert.equal(await standardHealth(host.address?.target ?? "", WORKERS_HEALTH_SERVICE), SERVING);
  });
});
