/** How values are named in messages: the type a value has, a short rendering of it, dtype names. */
import { pbValues } from "@toolbridge/core";

type Value = pbValues.Value;
type Kind = NonNullable<Value["kind"]>["$case"];

const KIND_TYPES: Record<Kind, string> = {
  nullValue: "null",
  boolValue: "boolean",
  intValue: "integer",
  bigIntValue: "integer",
  floatValue: "float",
  stringValue: "string",
  bytesValue: "bytes",
  listValue: "list",
  mapValue: "map",
  tensorValue: "tensor",
  timestampValue: "timestamp",
};

export const DTYPE_NAMES: Partial<Record<number, string>> = {
  [pbValues.DType.DTYPE_BOOL]: "bool",
  [pbValues.DType.DTYPE_INT8]: "int8",
  [pbValues.DType.DTYPE_INT16]: "int16",
  [pbValues.DType.DTYPE_INT32]: "int32",
  [pbValues.DType.DTYPE_INT64]: "int64",
  [pbValues.DType.DTYPE_UINT8]: "uint8",
  [pbValues.DType.DTYPE_UINT16]: "uint16",
  [pbValues.DType.DTYPE_UINT32]: "uint32",
  [pbValues.DType.DTYPE_UINT64]: "uint64",
  [pbValues.DType.DTYPE_FLOAT16]: "float16",
  [pbValues.DType.DTYPE_FLOAT32]: "float32",
  [pbValues.DType.DTYPE_FLOAT64]: "float64",
};

/** The type recorded for an undeclared variable holding `value`. */
export function inferType(value: Value): string {
  const kind = value.kind?.$case;
  return kind === undefined ? "any" : KIND_TYPES[kind];
}

/** A short rendering of a value for error messages (never the whole of a large value). */
export function show(value: Value): string {
  const kind = value.kind;
  switch (kind?.$case) {
    case undefined:
      return "(no value)";
    case "nullValue":
      return "null";
    case "boolValue":
    case "floatValue":
      return String(kind.value);
    case "intValue":
    case "bigIntValue":
      return kind.value.toString().length > 40
        ? `an integer of ${kind.value.toString().length} digits`
        : String(kind.value);
    case "stringValue":
      return kind.value.length > 60
        ? `${JSON.stringify(kind.value.slice(0, 60))}...`
        : JSON.stringify(kind.value);
    case "bytesValue":
      return `<${kind.value.length} bytes>`;
    case "listValue":
      return `a list of ${kind.value.values.length} items`;
    case "mapValue":
      return `a map of ${kind.value.entries.length} entries`;
    case "tensorValue":
      return `a ${DTYPE_NAMES[kind.value.dtype] ?? "?"} tensor of shape [${kind.value.shape.join(", ")}]`;
    case "timestampValue":
      return "a timestamp";
  }
}
