// Public surface of @toolbridge/core: the value codec, the error type, the variable types
// and the agent records shared by the host and the client. Nothing here does I/O of its own
// (the agent store uses the variables it is given). Named exports only: every name below is
// public API.
import "./wire.js";

// --- For users: errors, values and agent records -----------------------------------------

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
  decodeAgentDefinition,
  decodeAgentRun,
  encodeAgentDefinition,
  encodeAgentRun,
  SessionVariableAgentStore,
} from "./agents.js";

export { BridgeError, type BridgeErrorOptions, ErrorType, isBridgeError, isErrorType } from "./errors.js";
export { orderedKeys } from "./map-order.js";
export {
  type DTypeName,
  Float64,
  float64,
  type NativeObject,
  type NativeValue,
  Tensor,
  type TensorArray,
  Timestamp,
} from "./native-values.js";
export {
  type DecodeOptions,
  decodeValue,
  encodeValue,
  MAX_BIG_INT_DIGITS,
  MAX_VALUE_DEPTH,
} from "./values.js";
export {
  type DeclareVariableOptions,
  type InferredVariableType,
  isVariableType,
  resumeAfterToPb,
  type SetVariableOptions,
  VARIABLE_TYPES,
  type Variable,
  type VariableConstraints,
  type VariableInfo,
  type VariableType,
  type VariableUpdate,
  type VariableWatcher,
  type VariableWriter,
  type WatchVariablesOptions,
} from "./variables.js";

// --- For library authors (the host, the client, other transports): the wire ---------------

export { encodeArgs, encodeKwargs } from "./arguments.js";
export { asBuffer, fromPbTimestamp, toPbTimestamp } from "./convert.js";
export { type EncodingGuide, encodingGuide, listGuide } from "./encoding-guide.js";
export { errorFromInfo } from "./error-info.js";
export { FILE_DESCRIPTOR_SET_BASE64 } from "./gen/descriptor.js";
export * as pbTimestamp from "./gen/google/protobuf/timestamp.js";
export * as pbAgents from "./gen/toolbridge/v1/agents.js";
export * as pb from "./gen/toolbridge/v1/toolbridge.js";
export * as pbValues from "./gen/toolbridge/v1/values.js";
export * as pbWorker from "./gen/toolbridge/v1/worker.js";
export {
  constraintsFromPb,
  constraintsToPb,
  encodeVariableValue,
  expectedVersionToPb,
  variableFromPb,
  variableInfoFromPb,
  variableUpdateFromPb,
} from "./variables.js";
export { decodeValueBytes, encodeValueBytes } from "./wire.js";
