/**
 * DSPy agent runs on a warm worker: the RunAgent stream turned into the events and result
 * that `runPythonAgent` reports for a spawned interpreter, so callers see no difference.
 */
import {
  BridgeError,
  decodeValue,
  ErrorType,
  encodeKwargs,
  errorFromInfo,
  type NativeValue,
  type pbValues,
  type pbWorker,
} from "@toolbridge/core";
import type { TraceCarrier } from "../tracing/contract.js";
import type { AgentEvent, PythonAgentResult, WorkerAgentOptions } from "./agent-run.js";
import { metadataOf } from "./calls.js";
import type { PoolWorker } from "./worker.js";

function decodeMap(values: Record<string, pbValues.Value>): Record<string, NativeValue> {
  return Object.fromEntries(Object.entries(values).map(([key, value]) => [key, decodeValue(value)]));
}

/** The AgentEvent of a progress message; undefined for `finished`. */
function agentEvent(message: pbWorker.AgentRunEvent): AgentEvent | undefined {
  const runId = message.runId;
  const step = message.step;
  const event = message.event;
  switch (event?.$case) {
    case "started":
      return { kind: "run_started", runId, agentId: event.value.agentId, lm: event.value.lm };
    case "thought":
      return { kind: "thought", runId, step, text: event.value };
    case "toolCall":
      return {
        kind: "tool_call",
        runId,
        step,
        toolName: event.value.toolName,
        toolArgs: decodeMap(event.value.toolArgs),
      };
    case "observation":
      return {
        kind: "observation",
        runId,
        step,
        toolName: event.value.toolName,
        observation: event.value.observation === undefined ? null : decodeValue(event.value.observation),
        errorType: event.value.errorType === "" ? null : event.value.errorType,
      };
    default:
      return undefined;
  }
}

/** Runs the agent on `worker`; resolves when the run finished, rejects when none could start. */
export async function runAgentOn(
  worker: PoolWorker,
  options: WorkerAgentOptions,
  trace?: TraceCarrier,
): Promise<PythonAgentResult> {
  const request: pbWorker.RunAgentRequest = {
    // Empty: the host the worker was started for, the only one it dials.
    hostAddress: "",
    sessionId: options.sessionId,
    agentId: options.agentId ?? "",
    signature: options.signature ?? "",
    tools: [...(options.tools ?? [])],
    maxIters: options.maxIters ?? 0,
    instructions: options.instructions ?? "",
    inputs: encodeKwargs(options.inputs ?? {}),
    lm: options.lm ?? "",
    script: options.script ?? "",
    lmFactory: options.lmFactory ?? "",
  };
  // The run's invoke_agent span continues the trace of whoever started it (when the host traces).
  const metadata = metadataOf(trace);
  const events = worker.stream("RunAgent", () => worker.client.runAgent(request, metadata), options.signal);
  for await (const message of events) {
    if (message.event?.$case !== "finished") {
      const event = agentEvent(message);
      if (event !== undefined) options.onEvent?.(event);
      continue;
    }
    const finished = message.event.value;
    if (finished.error !== undefined) throw errorFromInfo(finished.error);
    return {
      agentId: finished.agentId,
      runId: message.runId,
      status: finished.status === "succeeded" ? "succeeded" : "failed",
      outputs: decodeMap(finished.outputs),
      error: finished.reason,
    };
  }
  throw new BridgeError(
    ErrorType.Unavailable,
    `Python worker ${worker.name} ended the agent run without a result`,
    {
      details: { worker: worker.name, retriable: "true" },
    },
  );
}
