// Public surface of @toolbridge/client.
export {
  BridgeError,
  type DeclareVariableOptions,
  ErrorType,
  Float64,
  float64,
  type NativeValue,
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
export type { BatchItem, BatchOptions } from "./batch.js";
export {
  type CallOptions,
  type ClientOptions,
  errorFromInfo,
  type ParameterSpec,
  type Session,
  type SessionDetails,
  ToolBridgeClient,
  type ToolSpec,
} from "./client.js";
export type { MetricsSnapshot, ToolCallMetrics } from "./metrics.js";
export {
  type BackoffPolicy,
  DEFAULT_BACKOFF,
  isTransientTransportError,
  type RetryEvent,
  type RetryOptions,
  retryDelay,
} from "./retry.js";
