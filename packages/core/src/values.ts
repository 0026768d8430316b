/**
 * ValueCodec: JavaScript values <-> the typed `toolbridge.v1.Value` message.
 *
 * Mapping (docs/values.md has the full table, Python included):
 *   null / undefined        <-> null
 *   boolean                 <-> bool
 *   number (integral)        -> int;     int <- number when safe, else bigint
 *   number (other, -0, NaN)  -> float;   float -> number
 *   bigint                   -> int or big_int (outside int64) -> bigint
 *   Float64                  -> float    (forces the float kind for integral numbers)
 *   string                  <-> string
 *   Uint8Array / Buffer     <-> bytes
 *   Array                   <-> list
 *   plain object / Map      <-> map      (decoded as a plain object, or a Map with {maps: "map"};
 *                                         a decoded object re-encodes in the order it arrived in)
 *   Tensor, other TypedArray -> tensor -> Tensor
 *   Date / Timestamp        <-> timestamp (Date when it has no sub-millisecond part)
 *
 * Encoding may follow an `EncodingGuide` (from a JSON Schema, see encoding-guide.ts):
 * where it says "number", an integral number is sent as a float.
 */

import { asBuffer, toPbTimestamp } from "./convert.js";
import { type EncodingGuide, entryGuide, guideFor, itemGuide } from "./encoding-guide.js";
import { BridgeError, ErrorType } from "./errors.js";
import { NullValue, type Value } from "./gen/toolbridge/v1/values.js";
import { objectFromEntries, orderedKeys } from "./map-order.js";
import {
  DTYPE_BY_CODE,
  dtypeInfo,
  Float64,
  invalid,
  type NativeValue,
  Tensor,
  type TensorArray,
  Timestamp,
} from "./native-values.js";

/** Containers may nest this deep; deeper values are refused in both languages. */
export const MAX_VALUE_DEPTH = 32;
/** Python's default limit for int <-> str conversion, so both sides accept the same. */
export const MAX_BIG_INT_DIGITS = 4300;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const CANONICAL_BIG_INT = /^-?[1-9][0-9]*$/;

export interface DecodeOptions {
  /**
   * How maps are returned. "object" (default) gives plain objects. Object.keys() lists
   * integer-like keys ("1", "2") first; the order the entries arrived in is kept on the
   * object for `orderedKeys()` and for encoding it again (not for a copy of it). "map"
   * gives Maps, which iterate in that order.
   */
  maps?: "object" | "map";
}

// ---------------------------------------------------------------------------
// Errors

/** Re-throws a nested failure with `segment` prepended to its path. */
function nested(error: unknown, segment: string): BridgeError {
  if (error instanceof BridgeError && error.type === ErrorType.InvalidValue) {
    return error.withDetail("path", segment + (error.details.path ?? ""));
  }
  if (error instanceof RangeError) {
    // The engine's own stack limit: a structure too deep for us to walk.
    return invalid("too_deep", `value nests deeper than ${MAX_VALUE_DEPTH} levels`);
  }
  throw error;
}

/** Final form of a codec error: the path goes into the message, where users read it. */
function finish(error: unknown): never {
  if (error instanceof BridgeError && error.type === ErrorType.InvalidValue) {
    const path = error.details.path;
    if (path !== undefined && path !== "") {
      throw error.withDetail("path", `$${path}`, `${error.message} (at $${path})`);
    }
  }
  throw error;
}

function keySegment(key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

// ---------------------------------------------------------------------------
// Encoding

/**
 * Encodes a JavaScript value as a `Value` message; throws BridgeError(InvalidValue).
 * With a `guide`, numbers where it says "number" are floats even when integral.
 */
export function encodeValue(input: unknown, guide?: EncodingGuide): Value {
  try {
    return encodeAt(input, 0, undefined, guide);
  } catch (error) {
    finish(error);
  }
}

function encodeAt(
  input: unknown,
  depth: number,
  seen: Set<object> | undefined,
  guided: EncodingGuide | undefined,
): Value {
  // Unguided encoding (the common case) pays for one comparison here and no more.
  const guide = guided === undefined ? undefined : guideFor(guided, input);
  switch (typeof input) {
    case "number":
      if (Number.isInteger(input) && !Object.is(input, -0) && guide?.float !== true) {
        if (Number.isSafeInteger(input)) {
          return { kind: { $case: "intValue", value: BigInt(input) } };
        }
        // Integral but beyond 2^53: keep it exact as an integer, not a float.
        return encodeBigInt(BigInt(input));
      }
      return { kind: { $case: "floatValue", value: input } };
    case "string":
      if (!input.isWellFormed()) {
        throw invalid("invalid_utf8", "string contains a lone surrogate and has no UTF-8 form");
      }
      return { kind: { $case: "stringValue", value: input } };
    case "boolean":
      return { kind: { $case: "boolValue", value: input } };
    case "bigint":
      return encodeBigInt(input);
    case "undefined":
      return { kind: { $case: "nullValue", value: NullValue.NULL_VALUE } };
    case "object":
      if (input === null) {
        return { kind: { $case: "nullValue", value: NullValue.NULL_VALUE } };
      }
      return encodeObject(input, depth, seen, guide);
    default:
      throw invalid("unsupported_type", `cannot encode a value of type ${typeof input}`);
  }
}

function encodeBigInt(value: bigint): Value {
  if (value >= INT64_MIN && value <= INT64_MAX) {
    return { kind: { $case: "intValue", value } };
  }
  const text = value.toString();
  if (text.replace("-", "").length > MAX_BIG_INT_DIGITS) {
    throw invalid("big_int_too_large", `integer has more than ${MAX_BIG_INT_DIGITS} digits`);
  }
  return { kind: { $case: "bigIntValue", value: text } };
}

function encodeObject(
  input: object,
  depth: number,
  seen: Set<object> | undefined,
  guide: EncodingGuide | undefined,
): Value {
  if (input instanceof Uint8Array && !(input instanceof Uint8ClampedArray)) {
    return { kind: { $case: "bytesValue", value: asBuffer(input) } };
  }
  if (input instanceof Float64) {
    return { kind: { $case: "floatValue", value: input.value } };
  }
  if (input instanceof Date) {
    return { kind: { $case: "timestampValue", value: toPbTimestamp(Timestamp.fromDate(input)) } };
  }
  if (input instanceof Timestamp) {
    return { kind: { $case: "timestampValue", value: toPbTimestamp(input) } };
  }
  if (input instanceof Tensor) {
    return encodeTensor(input);
  }
  if (ArrayBuffer.isView(input)) {
    if (input instanceof DataView || input instanceof Uint8ClampedArray) {
      return { kind: { $case: "bytesValue", value: asBuffer(input) } };
    }
    return encodeTensor(Tensor.fromTypedArray(input as TensorArray));
  }
  if (input instanceof ArrayBuffer) {
    return { kind: { $case: "bytesValue", value: Buffer.from(input) } };
  }

  if (depth >= MAX_VALUE_DEPTH) {
    throw invalid("too_deep", `value nests deeper than ${MAX_VALUE_DEPTH} levels`);
  }
  // Cycle detection only starts below a few levels: shallow values cannot be cyclic
  // without also being deep, and skipping the Set keeps the common case cheap.
  let visited = seen;
  if (depth >= 8) {
    visited = seen ?? new Set();
    if (visited.has(input)) {
      throw invalid("circular", "value contains a circular reference");
    }
    visited.add(input);
  }
  try {
    return encodeContainer(input, depth, visited, guide);
  } finally {
    visited?.delete(input);
  }
}

function encodeContainer(
  input: object,
  depth: number,
  seen: Set<object> | undefined,
  guide: EncodingGuide | undefined,
): Value {
  if (Array.isArray(input)) {
    const values: Value[] = new Array(input.length);
    for (let i = 0; i < input.length; i++) {
      try {
        values[i] = encodeAt(input[i], depth + 1, seen, guide && itemGuide(guide, i));
      } catch (error) {
        throw nested(error, `[${i}]`);
      }
    }
    return { kind: { $case: "listValue", value: { values } } };
  }
  if (input instanceof Map) {
    const entries = [];
    for (const [key, item] of input) {
      if (typeof key !== "string") {
        throw invalid("map_key", `map keys must be strings, got ${typeof key}`);
      }
      entries.push(encodeEntry(key, item, depth, seen, guide));
    }
    return { kind: { $case: "mapValue", value: { entries } } };
  }
  const withJson = input as { toJSON?: unknown };
  if (typeof withJson.toJSON === "function") {
    return encodeAt((withJson.toJSON as () => unknown)(), depth, seen, guide);
  }
  if (input instanceof Set) {
    return encodeContainer([...input], depth, seen, guide);
  }
  const entries = [];
  for (const key of orderedKeys(input)) {
    const item = (input as Record<string, unknown>)[key];
    // As in JSON, an undefined property is absent rather than null.
    if (item !== undefined) {
      entries.push(encodeEntry(key, item, depth, seen, guide));
    }
  }
  return { kind: { $case: "mapValue", value: { entries } } };
}

function encodeEntry(
  key: string,
  item: unknown,
  depth: number,
  seen: Set<object> | undefined,
  guide: EncodingGuide | undefined,
) {
  if (!key.isWellFormed()) {
    throw invalid("invalid_utf8", "map key contains a lone surrogate and has no UTF-8 form");
  }
  const child = guide && entryGuide(guide, key);
  try {
    return { key, value: encodeAt(item, depth + 1, seen, child) };
  } catch (error) {
    throw nested(error, keySegment(key));
  }
}

function encodeTensor(tensor: Tensor): Value {
  const code = dtypeInfo(tensor.dtype).code;
  return {
    kind: {
      $case: "tensorValue",
      value: { dtype: code, shape: [...tensor.shape], data: asBuffer(tensor.data) },
    },
  };
}

// ---------------------------------------------------------------------------
// Decoding

/** Decodes a `Value` message to a JavaScript value; throws BridgeError(InvalidValue). */
export function decodeValue(value: Value | undefined, options: DecodeOptions = {}): NativeValue {
  try {
    return decodeAt(value, 0, options.maps === "map");
  } catch (error) {
    finish(error);
  }
}

function decodeAt(value: Value | undefined, depth: number, asMap: boolean): NativeValue {
  const kind = value?.kind;
  if (kind === undefined) {
    throw invalid("no_kind", "Value has no kind set");
  }
  switch (kind.$case) {
    case "nullValue":
      return null;
    case "boolValue":
    case "stringValue":
    case "floatValue":
      return kind.value;
    case "intValue": {
      const n = kind.value;
      return n >= -9007199254740991n && n <= 9007199254740991n ? Number(n) : n;
    }
    case "bigIntValue":
      return decodeBigInt(kind.value);
    case "bytesValue":
      return kind.value;
    case "timestampValue": {
      const ts = new Timestamp(kind.value.seconds, kind.value.nanos);
      return ts.nanos % 1_000_000 === 0 ? ts.toDate() : ts;
    }
    case "tensorValue": {
      const info = DTYPE_BY_CODE.get(kind.value.dtype);
      if (info === undefined) {
        throw invalid("unknown_dtype", `unknown tensor dtype code ${kind.value.dtype}`);
      }
      return new Tensor(info.name, kind.value.shape, kind.value.data);
    }
    case "listValue": {
      if (depth >= MAX_VALUE_DEPTH) {
        throw invalid("too_deep", `value nests deeper than ${MAX_VALUE_DEPTH} levels`);
      }
      const items = kind.value.values;
      const out: NativeValue[] = new Array(items.length);
      for (let i = 0; i < items.length; i++) {
        try {
          out[i] = decodeAt(items[i], depth + 1, asMap);
        } catch (error) {
          throw nested(error, `[${i}]`);
        }
      }
      return out;
    }
    case "mapValue": {
      if (depth >= MAX_VALUE_DEPTH) {
        throw invalid("too_deep", `value nests deeper than ${MAX_VALUE_DEPTH} levels`);
      }
      const map = new Map<string, NativeValue>();
      for (const entry of kind.value.entries) {
        if (map.has(entry.key)) {
          throw invalid("duplicate_map_key", `map has the key ${JSON.stringify(entry.key)} twice`);
        }
        try {
          map.set(entry.key, decodeAt(entry.value, depth + 1, asMap));
        } catch (error) {
          throw nested(error, keySegment(entry.key));
        }
      }
      return asMap ? map : objectFromEntries(map);
    }
    default: {
      const unknownCase: never = kind;
      throw invalid("no_kind", `unknown Value kind ${JSON.stringify(unknownCase)}`);
    }
  }
}

function decodeBigInt(text: string): bigint {
  if (!CANONICAL_BIG_INT.test(text)) {
    throw invalid("big_int_not_canonical", `big_int_value ${JSON.stringify(text)} is not canonical decimal`);
  }
  if (text.replace("-", "").length > MAX_BIG_INT_DIGITS) {
    throw invalid("big_int_too_large", `big_int_value has more than ${MAX_BIG_INT_DIGITS} digits`);
  }
  const n = BigInt(text);
  if (n >= INT64_MIN && n <= INT64_MAX) {
    throw invalid(
      "big_int_not_canonical",
      `big_int_value ${text} fits in int64 and must be sent as int_value`,
    );
  }
  return n;
}
