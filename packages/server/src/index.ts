// Public surface of @toolbridge/server: the host, tool definitions, session stores, config.
export { BridgeError, ErrorType, Float64, float64, Tensor, Timestamp } from "@toolbridge/core";
export {
  type AgentEvent,
  PythonAgentError,
  type PythonAgentOptions,
  type PythonAgentResult,
  pythonAgentArgs,
  runPythonAgent,
} from "./agents/python-agent.js";
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
export type {
  CreateResult,
  SessionEnded,
  SessionEndReason,
  SessionRecord,
  SessionStore,
  SessionStoreOptions,
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
