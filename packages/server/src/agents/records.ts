/**
 * The records Python workers keep of DSPy agent runs, read on the host. A worker stores each
 * run in the session variable `run_<runId>` (and rewrites it as the run progresses) and each
 * agent definition in `agent_<agentId>` (toolbridge.agent.store in Python); these readers turn
 * those variables into typed objects.
 */
import { BridgeError, ErrorType, Timestamp } from "@toolbridge/core";
import type { SessionVariables } from "../variables/session-variables.js";

/** One ReAct iteration: the thought, the tool call it chose, and what came back. */
export interface AgentRunStep {
  readonly thought: string;
  readonly toolName: string;
  readonly toolArgs: Readonly<Record<string, unknown>>;
  readonly observation: unknown;
  /** The error type when the call failed (the agent then saw the error as its observation). */
  readonly errorType: string | null;
}

export interface AgentRunRecord {
  readonly runId: string;
  readonly agentId: string;
  readonly status: "running" | "succeeded" | "failed";
  readonly inputs: Readonly<Record<string, unknown>>;
  readonly steps: readonly AgentRunStep[];
  /** The signature's output fields once the run succeeded. */
  readonly outputs: Readonly<Record<string, unknown>>;
  readonly reasoning: string;
  readonly error: string;
  readonly startedAt: Date | undefined;
  readonly finishedAt: Date | undefined;
  /** The worker that ran it (host:pid) and the LM that drove it. */
  readonly worker: string;
  readonly lm: string;
  /** The variable's version: it grows as the worker records progress. */
  readonly version: number;
}

export const AGENT_RUN_PREFIX = "run_";

type Fields = Readonly<Record<string, unknown>>;

function isFields(value: unknown): value is Fields {
  return (
    typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Timestamp)
  );
}

function text(value: unknown): string {
  return typeof value === "string" ? value : "";
}

function date(value: unknown): Date | undefined {
  if (value instanceof Date) return value;
  if (value instanceof Timestamp) return value.toDate();
  return undefined;
}

function runFrom(name: string, value: unknown, version: number): AgentRunRecord {
  if (!isFields(value) || value.kind !== "agent_run") {
    throw new BridgeError(
      ErrorType.ValidationError,
      `session variable '${name}' is not an agent run record`,
      {
        details: { variable: name },
      },
    );
  }
  const status = value.status === "succeeded" || value.status === "failed" ? value.status : "running";
  const steps = Array.isArray(value.steps) ? value.steps.filter(isFields) : [];
  return {
    runId: text(value.run_id),
    agentId: text(value.agent_id),
    status,
    inputs: isFields(value.inputs) ? value.inputs : {},
    steps: steps.map((step) => ({
      thought: text(step.thought),
      toolName: text(step.tool_name),
      toolArgs: isFields(step.tool_args) ? step.tool_args : {},
      observation: step.observation,
      errorType: typeof step.error_type === "string" ? step.error_type : null,
    })),
    outputs: isFields(value.outputs) ? value.outputs : {},
    reasoning: text(value.reasoning),
    error: text(value.error),
    startedAt: date(value.started_at),
    finishedAt: date(value.finished_at),
    worker: text(value.worker),
    lm: text(value.lm),
    version,
  };
}

/** The record of run `runId` in the session; throws VariableNotFound when there is none. */
export async function readAgentRun(variables: SessionVariables, runId: string): Promise<AgentRunRecord> {
  const name = `${AGENT_RUN_PREFIX}${runId}`;
  const variable = await variables.get(name);
  return runFrom(name, variable.value, variable.version);
}

/** The session's run records (of one agent when `agentId` is given), oldest first. */
export async function listAgentRuns(
  variables: SessionVariables,
  agentId?: string,
): Promise<AgentRunRecord[]> {
  const prefix = agentId === undefined ? AGENT_RUN_PREFIX : `${AGENT_RUN_PREFIX}${agentId}_`;
  const found = await variables.list({ prefix });
  const runs = found
    .filter((v) => v.tags.kind === "agent_run")
    .map((variable) => runFrom(variable.name, variable.value, variable.version));
  return runs.sort((a, b) => (a.startedAt?.getTime() ?? 0) - (b.startedAt?.getTime() ?? 0));
}
