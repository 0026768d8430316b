// Public surface of @toolbridge/server. Named exports only: every name below is public API.

// --- For users: the host, tools, sessions and their variables, agents, configuration ------

export {
  AGENT_DEFINITION_PREFIX,
  AGENT_RUN_PREFIX,
  type AgentDefinition,
  type AgentRecordVariables,
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
  SessionVariableAgentStore,
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
export {
  type AgentTlsFiles,
  type PythonAgentOptions,
  runPythonAgent,
} from "./agents/python-agent.js";
export type { AuthenticateHook, AuthenticationRequest, HookPrincipal } from "./auth/authenticator.js";
export {
  type ConfigSources,
  DEFAULT_CONFIG,
  type HostConfig,
  type HostConfigInput,
  resolveConfig,
} from "./config.js";
export {
  type CreateSessionOptions,
  type HostOptions,
  type ListeningAddress,
  type SessionInfo,
  WORKERS_HEALTH_SERVICE,
} from "./host/options.js";
export { ToolBridgeHost } from "./host.js";
export { InMemorySessionStore } from "./sessions/memory/store.js";
export { RedisSessionStore, type RedisSessionStoreOptions } from "./sessions/redis/store.js";
export type { SessionEnded, SessionEndReason } from "./sessions/session-table.js";
export {
  defineTool,
  type ParametersSchema,
  type PlainToolOptions,
  type StreamingToolOptions,
  Tool,
  type ToolContext,
} from "./tools/define.js";
export type { ToolLimitOptions, ToolLimits } from "./tools/limits.js";
export { SessionVariables } from "./variables/session-variables.js";
export type { AgentEvent, PythonAgentResult, WorkerAgentOptions } from "./workers/agent-run.js";
export type { EncodedCallOptions } from "./workers/calls.js";
export type { PoolCallOptions } from "./workers/direct-calls.js";
export type { PoolState, WorkerCounts, WorkerInfo } from "./workers/metrics.js";
export type { WorkerPoolOptions } from "./workers/options.js";
export { WorkerPool } from "./workers/pool.js";

// --- For library authors: a SessionStore of your own, part by part (docs/stores.md) -------

export {
  type CallClaim,
  type CallClaimRequest,
  type CallRecordLimits,
  type CallRecordStore,
  DEFAULT_CALL_RECORDS,
} from "./sessions/call-records.js";
export { sessionStoreOptions } from "./sessions/factory.js";
export type { NodeDirectory, NodeEntry } from "./sessions/node-directory.js";
export { DEFAULT_MAX_SESSION_BYTES, type SessionStoreOptions } from "./sessions/options.js";
export type { RateSlots } from "./sessions/rate-slots.js";
export type {
  CreateOptions,
  CreateResult,
  SessionPage,
  SessionQuery,
  SessionRecord,
  SessionTable,
} from "./sessions/session-table.js";
export type { ListedSessionTool, SessionToolDirectory } from "./sessions/session-tools.js";
export type { SessionStore, StoreUsage } from "./sessions/store.js";
export type {
  ChangeHistory,
  Following,
  VariableChange,
  VariableFilter,
  VariableMutation,
  VariableMutationResult,
  VariableSlot,
  VariableSnapshot,
  VariableStore,
} from "./sessions/variable-store.js";

// --- For library authors: Python worker tools registered on another host ------------------

export { hostToolsFor, parametersFromJsonSchema } from "./workers/host-tools.js";
