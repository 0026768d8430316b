// Public surface of @toolbridge/client. Named exports only: every name below is public API.
export {
  AGENT_DEFINITION_PREFIX,
  AGENT_RUN_PREFIX,
  type AgentDefinition,
  type AgentRun,
  type AgentRunStatus,
  type AgentRunStep,
  type AgentStore,
  agentDefinitionVariable,
  agentRunVariable,
  BridgeError,
  type DeclareVariableOptions,
  decodeAgentDefinition,
  decodeAgentRun,
  ErrorType,
  encodeAgentDefinition,
  encodeAgentRun,
  Float64,
  float64,
  type NativeValue,
  orderedKeys,
  type SetVariableOptions,
  Tensor,
  Timestamp,
  VARIABLE_TYPES,
  type Variable,
  type VariableConstraints,
  type VariableInfo,
  type VariableType,
  type VariableUpdate,
  type VariableWatcher,
  type WatchVariablesOptions,
} from "@toolbridge/core";
export { SessionVariableAgentStore } from "./agents.js";
export type { BatchItem, BatchOptions } from "./batch.js";
export { ToolBridgeClient } from "./client.js";
export type { HostMetrics, ToolMetrics } from "./metrics.js";
export type { CallOptions, ClientOptions, StreamOptions } from "./options.js";
export {
  type BackoffPolicy,
  DEFAULT_BACKOFF,
  type RetryEvent,
  type RetryOptions,
  type SessionRecreated,
} from "./retry.js";
export type { ParameterSpec, Session, SessionDetails, ToolSpec } from "./specs.js";
