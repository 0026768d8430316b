// Public surface of @toolbridge/client.
export {
  BridgeError,
  ErrorType,
  Float64,
  float64,
  type NativeValue,
  Tensor,
  Timestamp,
} from "@toolbridge/core";
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
