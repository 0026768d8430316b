/**
 * Stored DSPy agents and the records of their runs, as TypeScript reads (and may write) them.
 * Python workers keep each agent definition in the session variable `agent_<agentId>` and
 * each run in `run_<runId>`, rewritten as the run progresses (toolbridge.agent.store). Both
 * hold the serialized message of proto/toolbridge/v1/agents.proto as a bytes value, so the
 * one schema is checked by the generated code of both languages (docs/agents.md).
 *
 * The store works over any access to a session's variables (`AgentRecordVariables`): the
 * host's `SessionVariables`, or a client's (`@toolbridge/client`'s store adapts one).
 */
import { fromPbTimestamp, toPbTimestamp } from "./convert.js";
import { BridgeError, ErrorType } from "./errors.js";
import * as pbAgents from "./gen/toolbridge/v1/agents.js";
import type * as pbValues from "./gen/toolbridge/v1/values.js";
import { type NativeValue, Timestamp } from "./native-values.js";
import { decodeValue, encodeValue } from "./values.js";
import type { SetVariableOptions, Variable } from "./variables.js";

export const AGENT_DEFINITION_PREFIX = "agent_";
export const AGENT_RUN_PREFIX = "run_";

const DEFINITION_SCHEMA = "toolbridge.v1.AgentDefinition";
const RUN_SCHEMA = "toolbridge.v1.AgentRun";

/** The session variable that holds the definition of agent `agentId`. */
export function agentDefinitionVariable(agentId: string): string {
  return `${AGENT_DEFINITION_PREFIX}${agentId}`;
}

/** The session variable that holds the record of run `runId`. */
export function agentRunVariable(runId: string): string {
  return `${AGENT_RUN_PREFIX}${runId}`;
}

/** Everything a worker needs to rebuild a dspy.ReAct agent (toolbridge.v1.AgentDefinition). */
export interface AgentDefinition {
  readonly agentId: string;
  /** A DSPy string signature with field types, e.g. "question: str -> answer: float". */
  readonly signature: string;
  readonly instructions: string;
  readonly toolNames: readonly string[];
  /** The most ReAct steps of a run, 1 to 100. */
  readonly maxIters: number;
  /** Descriptions of the signature's fields, by field name. */
  readonly fieldDescs: Readonly<Record<string, string>>;
  readonly createdAt: Date;
  readonly createdBy: string;
}

export type AgentRunStatus = "running" | "succeeded" | "failed";

/** One ReAct iteration: the thought, the tool call it chose, and what came back. */
export interface AgentRunStep {
  readonly thought: string;
  readonly toolName: string;
  readonly toolArgs: Readonly<Record<string, NativeValue>>;
  readonly observation: NativeValue;
  /** The error type when the call failed (the agent then saw the error as its observation), else null. */
  readonly errorType: string | null;
  /**
   * When the step began (the LM was asked for its thought) and when its tool call ended;
   * undefined in records written before steps were timed.
   */
  readonly startedAt?: Date | undefined;
  readonly finishedAt?: Date | undefined;
}

/** A run of an agent (toolbridge.v1.AgentRun); Python's toolbridge.agent.AgentRun has the same fields. */
export interface AgentRun {
  readonly runId: string;
  readonly agentId: string;
  readonly status: AgentRunStatus;
  readonly inputs: Readonly<Record<string, NativeValue>>;
  readonly steps: readonly AgentRunStep[];
  /** The signature's output fields once the run succeeded. */
  readonly outputs: Readonly<Record<string, NativeValue>>;
  readonly reasoning: string;
  readonly error: string;
  /** As Dates: to the millisecond (a Python worker records microseconds). */
  readonly startedAt: Date;
  readonly finishedAt: Date | undefined;
  /** The worker that ran it and the LM that drove it. */
  readonly worker: string;
  readonly lm: string;
}

// ---------------------------------------------------------------------------
// The stored form: the serialized messages of agents.proto

const STATUS_TO_PB: Record<AgentRunStatus, pbAgents.AgentRunStatus> = {
  running: pbAgents.AgentRunStatus.AGENT_RUN_STATUS_RUNNING,
  succeeded: pbAgents.AgentRunStatus.AGENT_RUN_STATUS_SUCCEEDED,
  failed: pbAgents.AgentRunStatus.AGENT_RUN_STATUS_FAILED,
};

function statusFromPb(status: pbAgents.AgentRunStatus): AgentRunStatus | undefined {
  return (Object.keys(STATUS_TO_PB) as AgentRunStatus[]).find((name) => STATUS_TO_PB[name] === status);
}

function malformed(what: string, reason: string): BridgeError {
  return new BridgeError(ErrorType.ValidationError, `malformed ${what}: ${reason}`);
}

function parse<T>(fns: pbAgents.MessageFns<T>, data: NativeValue, what: string, schema: string): T {
  if (!(data instanceof Uint8Array)) {
    throw new BridgeError(ErrorType.ValidationError, `not an ${what}: expected the bytes of ${schema}`);
  }
  try {
    return fns.decode(data);
  } catch (error) {
    throw malformed(what, error instanceof Error ? error.message : String(error));
  }
}

function mapToPb(fields: Readonly<Record<string, unknown>>): pbValues.MapValue {
  const value = encodeValue(fields);
  return value.kind?.$case === "mapValue" ? value.kind.value : { entries: [] };
}

function mapFromPb(map: pbValues.MapValue | undefined): Record<string, NativeValue> {
  const decoded = decodeValue({ kind: { $case: "mapValue", value: map ?? { entries: [] } } });
  return decoded as Record<string, NativeValue>;
}

/** The stored form of a definition: the serialized toolbridge.v1.AgentDefinition. */
export function encodeAgentDefinition(definition: AgentDefinition): Uint8Array {
  // Sorted so that equal definitions give equal bytes in both languages (Python sorts map keys).
  const fieldDescs = Object.fromEntries(
    Object.entries(definition.fieldDescs).sort(([a], [b]) => (a < b ? -1 : 1)),
  );
  return pbAgents.AgentDefinition.encode({
    ...definition,
    toolNames: [...definition.toolNames],
    fieldDescs,
    createdAt: toPbTimestamp(Timestamp.fromDate(definition.createdAt)),
  }).finish();
}

/** A definition from its stored form; throws ValidationError when the bytes are not one. */
export function decodeAgentDefinition(data: NativeValue): AgentDefinition {
  const message = parse(pbAgents.AgentDefinition, data, "agent definition", DEFINITION_SCHEMA);
  if (message.agentId === "" || message.signature === "") {
    throw malformed("agent definition", "no agent id or signature");
  }
  return { ...message, createdAt: fromPbTimestamp(message.createdAt) };
}

function optionalTimestamp(date: Date | undefined) {
  return date === undefined ? undefined : toPbTimestamp(Timestamp.fromDate(date));
}

/** The stored form of a run: the serialized toolbridge.v1.AgentRun. */
export function encodeAgentRun(run: AgentRun): Uint8Array {
  return pbAgents.AgentRun.encode({
    ...run,
    status: STATUS_TO_PB[run.status],
    inputs: mapToPb(run.inputs),
    steps: run.steps.map((step) => ({
      thought: step.thought,
      toolName: step.toolName,
      toolArgs: mapToPb(step.toolArgs),
      observation: encodeValue(step.observation),
      errorType: step.errorType ?? "",
      startedAt: optionalTimestamp(step.startedAt),
      finishedAt: optionalTimestamp(step.finishedAt),
    })),
    outputs: mapToPb(run.outputs),
    startedAt: toPbTimestamp(Timestamp.fromDate(run.startedAt)),
    finishedAt: optionalTimestamp(run.finishedAt),
  }).finish();
}

/** A run from its stored form; throws ValidationError when the bytes are not one. */
export function decodeAgentRun(data: NativeValue): AgentRun {
  const message = parse(pbAgents.AgentRun, data, "agent run", RUN_SCHEMA);
  const status = statusFromPb(message.status);
  if (status === undefined || message.runId === "") {
    throw malformed("agent run", `run id '${message.runId}', status ${message.status}`);
  }
  return {
    ...message,
    status,
    inputs: mapFromPb(message.inputs),
    steps: message.steps.map((step) => ({
      thought: step.thought,
      toolName: step.toolName,
      toolArgs: mapFromPb(step.toolArgs),
      observation: decodeValue(step.observation),
      errorType: step.errorType === "" ? null : step.errorType,
      startedAt: step.startedAt === undefined ? undefined : fromPbTimestamp(step.startedAt),
      finishedAt: step.finishedAt === undefined ? undefined : fromPbTimestamp(step.finishedAt),
    })),
    outputs: mapFromPb(message.outputs),
    startedAt: fromPbTimestamp(message.startedAt),
    finishedAt: message.finishedAt === undefined ? undefined : fromPbTimestamp(message.finishedAt),
  };
}

// ---------------------------------------------------------------------------
// The store

/** Where a session keeps agent definitions and run records; Python's AgentStore has the same methods. */
export interface AgentStore {
  saveDefinition(definition: AgentDefinition): Promise<void>;
  /** Throws VariableNotFound when the session has no such agent. */
  loadDefinition(agentId: string): Promise<AgentDefinition>;
  listDefinitions(): Promise<AgentDefinition[]>;
  /** Creates or replaces the record of `run.runId`. */
  recordRun(run: AgentRun): Promise<void>;
  /** Throws VariableNotFound when the session has no such run. */
  loadRun(runId: string): Promise<AgentRun>;
  /** The session's runs (of one agent when `agentId` is given), oldest first. */
  listRuns(agentId?: string): Promise<AgentRun[]>;
}

/**
 * What the store needs of a session's variables. The host's `SessionVariables` is one as it is;
 * `@toolbridge/client`'s `SessionVariableAgentStore` makes one of a client.
 */
export interface AgentRecordVariables {
  readonly sessionId: string;
  get(name: string): Promise<Variable>;
  set(name: string, value: unknown, options: SetVariableOptions): Promise<unknown>;
  list(options: { prefix: string }): Promise<Variable[]>;
}

/**
 * Agents and runs in a session's variables, the same store as Python's
 * toolbridge.agent.SessionVariableAgentStore: `new SessionVariableAgentStore(host.variables(id))`
 * on the host.
 */
export class SessionVariableAgentStore implements AgentStore {
  constructor(readonly variables: AgentRecordVariables) {}

  async saveDefinition(definition: AgentDefinition): Promise<void> {
    await this.variables.set(agentDefinitionVariable(definition.agentId), encodeAgentDefinition(definition), {
      tags: { schema: DEFINITION_SCHEMA, kind: "agent", agent_id: definition.agentId },
    });
  }

  async loadDefinition(agentId: string): Promise<AgentDefinition> {
    const variable = await this.find("agent", agentId, agentDefinitionVariable(agentId));
    return decodeAgentDefinition(variable.value);
  }

  async listDefinitions(): Promise<AgentDefinition[]> {
    const found = await this.variables.list({ prefix: AGENT_DEFINITION_PREFIX });
    return found
      .filter((v) => v.tags.schema === DEFINITION_SCHEMA)
      .map((v) => decodeAgentDefinition(v.value));
  }

  async recordRun(run: AgentRun): Promise<void> {
    await this.variables.set(agentRunVariable(run.runId), encodeAgentRun(run), {
      tags: { schema: RUN_SCHEMA, kind: "agent_run", agent_id: run.agentId, status: run.status },
    });
  }

  async loadRun(runId: string): Promise<AgentRun> {
    const variable = await this.find("run", runId, agentRunVariable(runId));
    return decodeAgentRun(variable.value);
  }

  async listRuns(agentId?: string): Promise<AgentRun[]> {
    const prefix = agentId === undefined ? AGENT_RUN_PREFIX : agentRunVariable(`${agentId}_`);
    const found = await this.variables.list({ prefix });
    const runs = found.filter((v) => v.tags.schema === RUN_SCHEMA).map((v) => decodeAgentRun(v.value));
    return runs.sort((a, b) => a.startedAt.getTime() - b.startedAt.getTime());
  }

  private async find(what: string, id: string, name: string): Promise<Variable> {
    try {
      return await this.variables.get(name);
    } catch (error) {
      if (error instanceof BridgeError && error.type === ErrorType.VariableNotFound) {
        throw new BridgeError(
          ErrorType.VariableNotFound,
          `no ${what} '${id}' in session ${this.variables.sessionId}`,
          { details: { variable: name } },
        );
      }
      throw error;
    }
  }
}
