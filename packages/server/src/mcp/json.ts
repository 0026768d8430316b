/**
 * Values as MCP carries them: JSON. Kinds JSON has (null, bool, string, safe integers,
 * finite floats, lists, maps) map one to one; the others take the documented JSON forms of
 * docs/mcp.md: integers beyond ±(2^53−1) and non-finite floats as strings, bytes as
 * base64, timestamps as RFC 3339 text, tensors as nested lists (numpy's `tolist()`).
 */
import {
  decodeValue,
  encodeValue,
  type NativeValue,
  orderedKeys,
  type pbValues,
  Tensor,
  Timestamp,
} from "@toolbridge/core";

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A Value (a result, a chunk, a variable) as JSON. */
export function valueToJson(value: pbValues.Value): Json {
  return nativeToJson(decodeValue(value));
}

/** JSON (an argument of an MCP call) as a Value. */
export function jsonToValue(json: unknown): pbValues.Value {
  return encodeValue(json);
}

/** A decoded value (what a tool's handler gets as arguments) as JSON. */
export function nativeToJson(value: NativeValue): Json {
  switch (typeof value) {
    case "boolean":
    case "string":
      return value;
    case "number":
      return Number.isFinite(value) ? value : String(value);
    case "bigint":
      return value.toString();
    default:
      break;
  }
  if (value === null) return null;
  if (Array.isArray(value)) return value.map(nativeToJson);
  if (value instanceof Uint8Array) return Buffer.from(value).toString("base64");
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Timestamp) return timestampText(value);
  if (value instanceof Tensor) return tensorToJson(value);
  const out: { [key: string]: Json } = {};
  if (value instanceof Map) {
    for (const [key, item] of value) out[key] = nativeToJson(item);
    return out;
  }
  for (const key of orderedKeys(value)) out[key] = nativeToJson(value[key] as NativeValue);
  return out;
}

/** RFC 3339 with nanoseconds, for the timestamps a Date cannot hold exactly. */
function timestampText(ts: Timestamp): string {
  const date = new Date(Number(ts.seconds) * 1000).toISOString().slice(0, 19);
  return `${date}.${String(ts.nanos).padStart(9, "0")}Z`;
}

/** A tensor as nested lists of its elements, row-major; a 0-d tensor as its one element. */
function tensorToJson(tensor: Tensor): Json {
  const array = tensor.toTypedArray();
  const element = (index: number): Json => {
    const item = array[index] as number | bigint;
    if (tensor.dtype === "bool") return item === 1;
    if (tensor.dtype === "float16") return halfToNumber(item as number);
    return nativeToJson(item);
  };
  let next = 0;
  const build = (axis: number): Json => {
    if (axis === tensor.shape.length) return element(next++);
    const rows: Json[] = [];
    for (let i = 0; i < (tensor.shape[axis] as number); i++) rows.push(build(axis + 1));
    return rows;
  };
  return build(0);
}

/** An IEEE 754 half-precision number from its 16 bits. */
function halfToNumber(bits: number): number | string {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction === 0 ? String(sign * Number.POSITIVE_INFINITY) : "NaN";
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/** The text content of a result: a string as it is, anything else as its JSON text. */
export function textOf(json: Json): string {
  return typeof json === "string" ? json : JSON.stringify(json);
}
