// Public surface of @toolbridge/server: the host, tool definitions, session stores, variables, config.
export {
  BridgeError,
  type DeclareVariableOptions,
  ErrorType,
  Float64,
  float64,
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
  type AgentEvent,
  PythonAgentError,
  type PythonAgentOptions,
  type PythonAgentResult,
  pythonAgentArgs,
  runPythonAgent,
} from "./agents/python-agent.js";
export {
  AGENT_RUN_PREFIX,
  type AgentRunRecord,
  type AgentRunStep,
  listAgentRuns,
  readAgentRun,
} from "./agents/records.js";
export {
  CONFIG_KEYS,
  DEFAULT_CONFIG,
  envName,
  flagName,
  type HostConfig,
  type HostConfigInput,
  parseConfig,
  resolveConfig,
} from "./config.js";
export { type HostOptions, type ListeningAddress, type SessionInfo, ToolBridgeHost } from "./host.js";
export { HostMetrics, UNRESOLVED_TOOL } from "./metrics/metrics.js";
export { InMemorySessionStore } from "./sessions/memory-store.js";
export {
  type CreateResult,
  type SessionEnded,
  type SessionEndReason,
  type SessionRecord,
  type SessionStore,
  type SessionStoreOptions,
  sessionNotFound,
  type VariableChange,
  type VariableFilter,
  type VariableMutation,
  type VariableMutationResult,
  type VariableSlot,
  type VariableSnapshot,
} from "./sessions/store.js";
export {
  defineTool,
  type ParametersSchema,
  type PlainToolOptions,
  type StreamingToolOptions,
  Tool,
  type ToolContext,
} from "./tools/define.js";
export type { ToolLimitOptions, ToolLimits } from "./tools/limits.js";
export { applyDelete, applySet, type SetCommand } from "./variables/semantics.js";
export { SessionVariables } from "./variables/session-variables.js";
