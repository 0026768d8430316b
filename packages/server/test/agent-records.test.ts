// Agent records across the language boundary: a definition and runs written by a Python
// worker (python/tests/agent_records.py, toolbridge.agent's store) are read here field by
// field, and the same records written here are read and checked by Python. Both sides
// build them from testdata/agents/records.json, and both encode them to the same bytes.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { SessionVariableAgentStore as ClientAgentStore, ToolBridgeClient } from "@toolbridge/client";
import {
  type AgentDefinition,
  type AgentRun,
  type AgentRunStatus,
  agentDefinitionVariable,
  agentRunVariable,
  BridgeError,
  decodeAgentRun,
  ErrorType,
  encodeAgentDefinition,
  encodeAgentRun,
  type NativeValue,
  SessionVariableAgentStore,
  ToolBridgeHost,
} from "@toolbridge/server";
import { pino } from "pino";
import { REPO_ROOT } from "./support/host-process.js";

const PYTHON = process.env.TOOLBRIDGE_PYTHON ?? `${REPO_ROOT}.venv/bin/python`;
const SCRIPT = `${REPO_ROOT}python/tests/agent_records.py`;

interface FixtureStep {
  thought: string;
  tool_name: string;
  tool_args: Record<string, NativeValue>;
  observation: NativeValue;
  error_type: string | null;
  started_at?: string | null;
  finished_at?: string | null;
}
interface FixtureRun {
  run_id: string;
  agent_id: string;
  status: AgentRunStatus;
  inputs: Record<string, NativeValue>;
  steps: FixtureStep[];
  outputs: Record<string, NativeValue>;
  reasoning: string;
  error: string;
  started_at: string;
  finished_at: string | null;
  worker: string;
  lm: string;
}
interface Fixture {
  definition: {
    agent_id: string;
    signature: string;
    instructions: string;
    tool_names: string[];
    max_iters: number;
    field_descs: Record<string, string>;
    created_at: string;
    created_by: string;
  };
  runs: FixtureRun[];
}

const fixture = JSON.parse(readFileSync(`${REPO_ROOT}testdata/agents/records.json`, "utf8")) as Fixture;

const definition: AgentDefinition = {
  agentId: fixture.definition.agent_id,
  signature: fixture.definition.signature,
  instructions: fixture.definition.instructions,
  toolNames: fixture.definition.tool_names,
  maxIters: fixture.definition.max_iters,
  fieldDescs: fixture.definition.field_descs,
  createdAt: new Date(fixture.definition.created_at),
  createdBy: fixture.definition.created_by,
};

function optionalDate(text: string | null | undefined): Date | undefined {
  return text === null || text === undefined ? undefined : new Date(text);
}

const runs: AgentRun[] = fixture.runs.map((run) => ({
  runId: run.run_id,
  agentId: run.agent_id,
  status: run.status,
  inputs: run.inputs,
  steps: run.steps.map((step) => ({
    thought: step.thought,
    toolName: step.tool_name,
    toolArgs: step.tool_args,
    observation: step.observation,
    errorType: step.error_type,
    startedAt: optionalDate(step.started_at),
    finishedAt: optionalDate(step.finished_at),
  })),
  outputs: run.outputs,
  reasoning: run.reasoning,
  error: run.error,
  startedAt: new Date(run.started_at),
  finishedAt: run.finished_at === null ? undefined : new Date(run.finished_at),
  worker: run.worker,
  lm: run.lm,
}));

async function python(command: "write" | "check", target: string, sessionId: string) {
  const { TOOLBRIDGE_LM: _ignored, ...env } = process.env;
  try {
    return await promisify(execFile)(PYTHON, [SCRIPT, command, "--address", target, "--session", sessionId], {
      cwd: REPO_ROOT,
      env,
    });
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    assert.fail(`agent_records.py ${command} exited ${failed.code}:\n${failed.stderr}${failed.stdout}`);
  }
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

describe("agent records between Python and TypeScript", () => {
  const host = new ToolBridgeHost({ host: "127.0.0.1", port: 0, logger: pino({ level: "silent" }) });
  let target = "";

  before(async () => {
    target = (await host.start()).target;
  });
  after(() => host.stop());

  it("reads, field by field, the records a Python worker wrote, and encodes them to the same bytes", async () => {
    const sessionId = (await host.createSession()).id;
    const written = await python("write", target, sessionId);
    const pythonBytes = JSON.parse(written.stdout) as { definition: string; runs: string[] };

    const store = new SessionVariableAgentStore(host.variables(sessionId));
    const read = await store.loadDefinition(definition.agentId);
    assert.deepStrictEqual(read, definition);
    for (const run of runs) {
      const stored = await store.loadRun(run.runId);
      for (const key of Object.keys(run) as (keyof AgentRun)[]) {
        assert.deepStrictEqual(stored[key], run[key], `${run.runId}.${key}`);
      }
      assert.deepStrictEqual(stored, run);
    }
    assert.deepStrictEqual(await store.listDefinitions(), [definition]);
    assert.deepStrictEqual(
      (await store.listRuns(definition.agentId)).map((run) => run.runId),
      runs.map((run) => run.runId),
    );

    // The same bytes from both languages: every field, and the kind of every value
    // (55.5 a float, 2 an int), is encoded alike.
    assert.equal(hex(encodeAgentDefinition(definition)), pythonBytes.definition);
    assert.deepStrictEqual(
      runs.map((run) => hex(encodeAgentRun(run))),
      pythonBytes.runs,
    );

    const variable = await host.variables(sessionId).get(agentRunVariable(runs[0]?.runId ?? ""));
    assert.equal(variable.createdBy, "python");
    assert.deepStrictEqual(variable.tags, {
      schema: "toolbridge.v1.AgentRun",
      kind: "agent_run",
      agent_id: definition.agentId,
      status: "succeeded",
    });
  });

  it("writes records that a Python worker reads back field by field", async () => {
    const sessionId = (await host.createSession()).id;
    const store = new SessionVariableAgentStore(host.variables(sessionId));
    await store.saveDefinition(definition);
    for (const run of runs) await store.recordRun(run);
    const checked = await python("check", target, sessionId);
    assert.equal(checked.stderr, "");

    const stored = await host.variables(sessionId).get(agentDefinitionVariable(definition.agentId));
    assert.equal(stored.createdBy, "typescript");
    assert.deepStrictEqual(stored.tags, {
      schema: "toolbridge.v1.AgentDefinition",
      kind: "agent",
      agent_id: definition.agentId,
    });
  });

  it("a client process reads and writes the same records as the host", async () => {
    const sessionId = (await host.createSession()).id;
    await python("write", target, sessionId);
    const client = new ToolBridgeClient(target);
    try {
      await client.initializeSession(sessionId);
      const agents = new ClientAgentStore(client);
      assert.deepStrictEqual(await agents.loadDefinition(definition.agentId), definition);
      assert.deepStrictEqual(await agents.listDefinitions(), [definition]);
      for (const run of runs) assert.deepStrictEqual(await agents.loadRun(run.runId), run);
      assert.deepStrictEqual(await agents.listRuns(definition.agentId), runs);
      await assert.rejects(
        agents.loadRun("react_missing_00000000"),
        (error: unknown) =>
          error instanceof BridgeError &&
          error.type === ErrorType.VariableNotFound &&
          error.message === `no run 'react_missing_00000000' in session ${sessionId}`,
      );

      // A record the client writes is the host's (and a Python worker's) to read.
      const first = runs[0];
      assert.ok(first !== undefined);
      const rerun: AgentRun = { ...first, runId: `${definition.agentId}_0c11e47a`, status: "running" };
      await agents.recordRun(rerun);
      const hostStore = new SessionVariableAgentStore(host.variables(sessionId));
      assert.deepStrictEqual(await hostStore.loadRun(rerun.runId), rerun);
      assert.equal(
        (await host.variables(sessionId).get(agentRunVariable(rerun.runId))).createdBy,
        "typescript",
      );
    } finally {
      await client.cleanup();
      client.close();
    }
  });

  it("names what is missing or malformed", async () => {
    const sessionId = (await host.createSession()).id;
    const variables = host.variables(sessionId);
    const store = new SessionVariableAgentStore(variables);
    await assert.rejects(
      store.loadRun("react_missing_00000000"),
      (error: unknown) =>
        error instanceof BridgeError &&
        error.type === ErrorType.VariableNotFound &&
        error.message === `no run 'react_missing_00000000' in session ${sessionId}`,
    );
    await variables.set(agentRunVariable("react_x_1"), { kind: "agent_run" });
    await assert.rejects(
      store.loadRun("react_x_1"),
      (error: unknown) =>
        error instanceof BridgeError &&
        error.type === ErrorType.ValidationError &&
        /not an agent run: expected the bytes of toolbridge.v1.AgentRun/.test(error.message),
    );
    assert.throws(
      () => decodeAgentRun(Buffer.from([0xff, 0xff])),
      (error: unknown) => error instanceof BridgeError && /malformed agent run/.test(error.message),
    );
    assert.throws(() => decodeAgentRun(new Uint8Array()), /malformed agent run: run id '', status 0/);
  });
});
