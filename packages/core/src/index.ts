// Public surface of @toolbridge/core: the value codec, the error type and the
// generated protocol messages (under `pb`). Nothing here does I/O.
import "./wire.js";

export { BridgeError, type BridgeErrorOptions, ErrorType, isBridgeError, isErrorType } from "./errors.js";
export { FILE_DESCRIPTOR_SET_BASE64 } from "./gen/descriptor.js";
export * as pbTimestamp from "./gen/google/protobuf/timestamp.js";
export * as pb from "./gen/toolbridge/v1/toolbridge.js";
export * as pbValues from "./gen/toolbridge/v1/values.js";
export {
  type DecodeOptions,
  type DTypeName,
  decodeValue,
  encodeValue,
  Float64,
  float64,
  MAX_BIG_INT_DIGITS,
  MAX_VALUE_DEPTH,
  type NativeObject,
  type NativeValue,
  Tensor,
  type TensorArray,
  Timestamp,
} from "./values.js";
export { decodeValueBytes, encodeValueBytes } from "./wire.js";
