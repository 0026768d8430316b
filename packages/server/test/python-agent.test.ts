// runPythonAgent: the host starting a DSPy ReAct agent in a real Python worker
// (`python -m toolbridge.agent` from the repository's virtualenv) against its own tools.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  type AgentEvent,
  agentRunVariable,
  BridgeError,
  type PythonAgentOptions,
  runPythonAgent,
  SessionVariableAgentStore,
  ToolBridgeHost,
} from "@toolbridge/server";
import { pino } from "pino";
import { tools as shopTools } from "../../../examples/tools/shop-tools.js";
import { pythonAgentArgs } from "../src/agents/python-agent.js";
import { REPO_ROOT } from "./support/host-process.js";

const PYTHON = process.env.TOOLBRIDGE_PYTHON ?? `${REPO_ROOT}.venv/bin/python`;
const QUESTION = "I'm ordering 3 items at 14.50 EUR each with express shipping. What will I pay in total?";

/** The environment without an LM choice of the person running the tests. */
function workerEnv(): NodeJS.ProcessEnv {
  const { TOOLBRIDGE_LM: _ignored, ...env } = process.env;
  return env;
}

function scriptFile(turns: unknown[]): string {
  const file = join(mkdtempSync(join(tmpdir(), "toolbridge-script-")), "turns.json");
  writeFileSync(file, JSON.stringify(turns));
  return file;
}

describe("runPythonAgent", () => {
  const host = new ToolBridgeHost({ host: "127.0.0.1", port: 0, logger: pino({ level: "silent" }) });
  let target = "";
  let sessionId = "";
  let base: PythonAgentOptions;

  before(async () => {
    host.registerTool(shopTools);
    target = (await host.start()).target;
    sessionId = (await host.createSession()).id;
    base = { python: PYTHON, address: target, sessionId, env: workerEnv(), cwd: REPO_ROOT };
  });
  after(() => host.stop());

  it("runs an agent over the host's tools and reports each step", async () => {
    const events: AgentEvent[] = [];
    const progress: string[] = [];
    const result = await runPythonAgent({
      ...base,
      tools: ["search_docs", "read_doc", "calculate"],
      inputs: { question: QUESTION },
      script: "shop",
      onEvent: (event) => events.push(event),
      onStderr: (line) => progress.push(line),
    });
    assert.equal(result.status, "succeeded", result.error);
    assert.deepEqual(result.outputs, {
      answer: "55.50 EUR: 3 x 14.50 EUR = 43.50 EUR for the items plus 12 EUR for express shipping.",
    });
    assert.match(result.runId, new RegExp(`^${result.agentId}_`));
    assert.deepEqual(
      events.map((e) => e.kind),
      ["run_started", ...Array(3).fill(["thought", "tool_call", "observation"]).flat()],
    );
    const calls = events.flatMap((e) => (e.kind === "tool_call" ? [[e.toolName, e.toolArgs]] : []));
    assert.deepEqual(calls, [
      ["search_docs", { query: "express shipping cost", limit: 2 }],
      ["calculate", { expression: "3 * 14.50 + 12" }],
      ["finish", {}],
    ]);
    assert.ok(events.every((e) => e.runId === result.runId));
    const observations = events.flatMap((e) => (e.kind === "observation" ? [e.observation] : []));
    assert.equal(observations[1], 55.5);
    assert.ok(progress.includes("[step 2] -> 55.5"), progress.join("\n"));

    // The worker recorded the run in the session: the host reads the whole trajectory.
    const agents = new SessionVariableAgentStore(host.variables(sessionId));
    const record = await agents.loadRun(result.runId);
    assert.equal(record.status, "succeeded");
    assert.equal(record.agentId, result.agentId);
    assert.deepEqual(record.inputs, { question: QUESTION });
    assert.deepEqual(
      record.steps.map((step) => [step.toolName, step.toolArgs]),
      calls,
    );
    assert.equal(record.steps[1]?.observation, 55.5);
    assert.ok(record.steps.every((step) => step.thought.length > 0 && step.errorType === null));
    assert.deepEqual(record.outputs, result.outputs);
    assert.ok(record.finishedAt !== undefined);
    assert.ok(record.startedAt <= record.finishedAt);
    const variable = await host.variables(sessionId).get(agentRunVariable(result.runId));
    assert.ok(variable.version > 1, "the run was recorded as it progressed, then finished");
    assert.equal(variable.createdBy, "python");
    assert.deepEqual(variable.tags, {
      schema: "toolbridge.v1.AgentRun",
      kind: "agent_run",
      agent_id: result.agentId,
      status: "succeeded",
    });
    // The agent the worker defined is stored too, so it can be run again by id.
    const definition = await agents.loadDefinition(result.agentId);
    assert.deepEqual(definition.toolNames, ["search_docs", "read_doc", "calculate"]);
    const runs = await agents.listRuns(result.agentId);
    assert.deepEqual(
      runs.map((run) => run.runId),
      [result.runId],
    );
  });

  it("runs an agent defined in TypeScript", async () => {
    const agents = new SessionVariableAgentStore(host.variables(sessionId));
    await agents.saveDefinition({
      agentId: "react_from_ts",
      signature: "question -> answer",
      instructions: "Answer with the total.",
      toolNames: ["search_docs", "read_doc", "calculate"],
      maxIters: 4,
      fieldDescs: { answer: "the total in EUR" },
      createdAt: new Date(),
      createdBy: "typescript",
    });
    const result = await runPythonAgent({
      ...base,
      agentId: "react_from_ts",
      inputs: { question: QUESTION },
      script: "shop",
    });
    assert.equal(result.status, "succeeded", result.error);
    assert.equal(result.agentId, "react_from_ts");
    const run = await agents.loadRun(result.runId);
    assert.deepEqual(
      run.steps.map((step) => step.toolName),
      ["search_docs", "calculate", "finish"],
    );
  });

  it("resolves a failed run with its error: the run happened", async () => {
    const result = await runPythonAgent({
      ...base,
      tools: ["calculate"],
      inputs: { question: "1 + 1?" },
      script: scriptFile([
        { next_thought: "Add.", next_tool_name: "calculate", next_tool_args: { expression: "1+1" } },
      ]),
    });
    assert.equal(result.status, "failed");
    assert.match(result.error, /all 1 turns of the scripted LM are used/);
    assert.deepEqual(result.outputs, {});
  });

  it("stops the worker when aborted; the run ends as failed", async () => {
    const controller = new AbortController();
    const result = await runPythonAgent({
      ...base,
      tools: ["index_corpus"],
      inputs: { question: "Reindex, slowly." },
      script: scriptFile([
        { next_thought: "Index.", next_tool_name: "index_corpus", next_tool_args: { delay_ms: 5000 } },
      ]),
      signal: controller.signal,
      onEvent: (event) => {
        if (event.kind === "tool_call") controller.abort();
      },
    });
    assert.equal(result.status, "failed");
    const reason =
      /^Cancelled: the run was stopped before it finished: stopped by SIGTERM \(1 step recorded\)$/;
    assert.match(result.error, reason);
    // The record in the session says the same, and which call was interrupted.
    const run = await new SessionVariableAgentStore(host.variables(sessionId)).loadRun(result.runId);
    assert.equal(run.status, "failed");
    assert.match(run.error, reason);
    assert.deepEqual(
      run.steps.map((step) => [step.toolName, step.errorType]),
      [["index_corpus", "Cancelled"]],
    );
  });

  it("runs the agent with the LM a factory of the user's builds", async () => {
    const events: AgentEvent[] = [];
    const result = await runPythonAgent({
      ...base,
      env: { ...workerEnv(), PYTHONPATH: `${REPO_ROOT}testdata/agents` },
      tools: ["calculate"],
      inputs: { question: "What is 6 x 7?" },
      lmFactory: "team_lm:make_lm",
      onEvent: (event) => events.push(event),
    });
    assert.equal(result.status, "succeeded", result.error);
    assert.deepEqual(result.outputs, { answer: "42" });
    assert.deepEqual(events[0], {
      kind: "run_started",
      runId: result.runId,
      agentId: result.agentId,
      lm: "team/scripted-calculator",
    });
    const run = await new SessionVariableAgentStore(host.variables(sessionId)).loadRun(result.runId);
    assert.equal(run.lm, "team/scripted-calculator");
    await assert.rejects(
      runPythonAgent({ ...base, inputs: { question: "?" }, lmFactory: "no_such_module:make" }),
      (error: unknown) =>
        error instanceof BridgeError &&
        error.type === "ValidationError" &&
        error.details.exit_code === "2" &&
        /cannot import 'no_such_module' for the LM factory no_such_module:make/.test(error.message),
    );
  });

  it("rejects when no run could start, with the worker's reason", async () => {
    await assert.rejects(
      runPythonAgent({ ...base, tools: ["calculate", "nope"], inputs: { question: "?" }, script: "shop" }),
      (error: unknown) =>
        error instanceof BridgeError &&
        error.type === "ValidationError" &&
        error.details.exit_code === "2" &&
        /the session has no tool 'nope'/.test(error.message),
    );
    await assert.rejects(
      runPythonAgent({ ...base, sessionId: "no_such_session", script: "shop" }),
      (error: unknown) =>
        error instanceof BridgeError &&
        error.type === "Unavailable" &&
        error.details.reason === "agent_unreachable" &&
        error.details.exit_code === "3" &&
        /session no_such_session does not exist/.test(error.message),
    );
    await assert.rejects(
      runPythonAgent({ ...base, python: "/nonexistent/python3" }),
      (error: unknown) =>
        error instanceof BridgeError &&
        error.type === "Unavailable" &&
        error.details.reason === "agent_not_started" &&
        error.details.exit_code === undefined &&
        /set TOOLBRIDGE_PYTHON/.test(error.message),
    );
  });

  it("builds the worker's command line from the options", () => {
    assert.deepEqual(
      pythonAgentArgs({
        address: "h:1",
        sessionId: "s",
        agentId: "react_1",
        inputs: { question: "q", n: 2 },
        lm: "openai/gpt-4o-mini",
      }),
      [
        ...["-m", "toolbridge.agent", "--address", "h:1", "--session", "s", "--events", "--agent", "react_1"],
        ...["--input-json", 'question="q"', "--input-json", "n=2", "--lm", "openai/gpt-4o-mini"],
      ],
    );
    assert.deepEqual(
      pythonAgentArgs({ address: "h:1", sessionId: "s", lm: "x/y", lmFactory: "team.llm:make" }),
      [
        ...["-m", "toolbridge.agent", "--address", "h:1", "--session", "s", "--events"],
        ...["--lm-factory", "team.llm:make"],
      ],
    );
  });
});
