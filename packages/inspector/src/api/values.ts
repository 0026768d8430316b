/**
 * Values on the page: a form's JSON turned into typed Values by the tool's JSON Schema (an
 * "integer" becomes an int, a "number" a float even when it is integral), and Values
 * turned back into text that keeps their kind visible (3 for an int, 3.0 for a float).
 */
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import {
  DType,
  type MapEntry,
  MapEntrySchema,
  type Value,
  ValueSchema,
} from "../gen/toolbridge/v1/values_pb";

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** The part of JSON Schema the page reads. */
export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema | boolean;
  prefixItems?: JsonSchema[];
  additionalProperties?: JsonSchema | boolean;
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
  definitions?: Record<string, JsonSchema>;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  enum?: Json[];
  default?: Json;
  description?: string;
  title?: string;
  [keyword: string]: unknown;
}

/** `schema` with a local `$ref` (#/$defs/X, #/definitions/X) followed; unknown references give {}. */
export function resolve(schema: JsonSchema | boolean | undefined, root: JsonSchema): JsonSchema {
  let current = typeof schema === "object" ? schema : {};
  for (let hops = 0; current.$ref !== undefined && hops < 32; hops++) {
    const path = current.$ref.replace(/^#\//, "").split("/").map(decodeURIComponent);
    let target: unknown = root;
    for (const part of path) target = (target as Record<string, unknown> | undefined)?.[part];
    current = typeof target === "object" && target !== null ? (target as JsonSchema) : {};
  }
  return current;
}

function typesOf(schema: JsonSchema): string[] {
  if (Array.isArray(schema.type)) return schema.type;
  return schema.type === undefined ? [] : [schema.type];
}

/** The branch of anyOf/oneOf that fits `value`'s JSON type, else the schema itself. */
function branchFor(value: Json, schema: JsonSchema, root: JsonSchema): JsonSchema {
  const branches = schema.anyOf ?? schema.oneOf;
  if (branches === undefined) return schema;
  const kind = value === null ? "null" : Array.isArray(value) ? "array" : typeof value;
  for (const branch of branches) {
    const resolved = resolve(branch, root);
    const types = typesOf(resolved);
    if (types.includes(kind === "object" ? "object" : kind)) return resolved;
    if (kind === "number" && types.includes("integer") && Number.isInteger(value)) return resolved;
  }
  return {};
}

const value = (kind: MessageInitShape<typeof ValueSchema>["kind"]): Value => create(ValueSchema, { kind });

/**
 * A form's JSON as a typed Value, by its schema: "integer" gives an int, "number" a float
 * (integral or not), arrays and objects recurse; without a schema an integral number is an
 * int, as the TypeScript host would send it.
 */
export function jsonToValue(
  json: Json | undefined,
  schema: JsonSchema | boolean | undefined,
  root: JsonSchema,
): Value {
  if (json === undefined || json === null) return value({ case: "nullValue", value: 0 });
  const resolved = branchFor(json, resolve(schema, root), root);
  const types = typesOf(resolved);
  if (typeof json === "boolean") return value({ case: "boolValue", value: json });
  if (typeof json === "string") return value({ case: "stringValue", value: json });
  if (typeof json === "number") {
    const asFloat = types.includes("number") && !types.includes("integer");
    if (Number.isInteger(json) && !asFloat) return value({ case: "intValue", value: BigInt(json) });
    return value({ case: "floatValue", value: json });
  }
  if (Array.isArray(json)) {
    const values = json.map((item, index) =>
      jsonToValue(item, resolved.prefixItems?.[index] ?? resolved.items, root),
    );
    return value({ case: "listValue", value: { values } });
  }
  const entries: MapEntry[] = Object.entries(json).map(([key, item]) =>
    create(MapEntrySchema, {
      key,
      value: jsonToValue(item, resolved.properties?.[key] ?? resolved.additionalProperties, root),
    }),
  );
  return value({ case: "mapValue", value: { entries } });
}

/** Keyword arguments from a form's object, each typed by its property's schema. */
export function kwargsOf(form: Record<string, Json>, schema: JsonSchema): Record<string, Value> {
  const kwargs: Record<string, Value> = {};
  for (const [key, item] of Object.entries(form)) {
    if (item === undefined) continue;
    kwargs[key] = jsonToValue(item, schema.properties?.[key], schema);
  }
  return kwargs;
}

/** A float as text that shows it is one: 3 → "3.0", NaN, Infinity as they are. */
export function floatText(n: number): string {
  if (Object.is(n, -0)) return "-0.0";
  return Number.isInteger(n) && Number.isFinite(n) && Math.abs(n) < 1e21 ? n.toFixed(1) : String(n);
}

/** The name of a Value's kind: "int", "float", "string", ... */
export function kindName(v: Value | undefined): string {
  switch (v?.kind.case) {
    case undefined:
    case "nullValue":
      return "null";
    case "boolValue":
      return "bool";
    case "intValue":
    case "bigIntValue":
      return "int";
    case "floatValue":
      return "float";
    case "stringValue":
      return "string";
    case "bytesValue":
      return "bytes";
    case "listValue":
      return "list";
    case "mapValue":
      return "map";
    case "tensorValue":
      return "tensor";
    case "timestampValue":
      return "timestamp";
  }
}

/** A tensor's element type as numpy names it. */
export function dtypeName(dtype: DType): string {
  return DType[dtype]?.replace("DTYPE_", "").toLowerCase() ?? "unknown";
}

/** A Value as one line of text, its kinds kept visible (ints plain, floats with a point, strings quoted). */
export function valueText(v: Value | undefined, limit = 200): string {
  const text = fullText(v, limit);
  return text.length <= limit ? text : `${text.slice(0, limit - 1)}…`;
}

function fullText(v: Value | undefined, budget: number): string {
  const kind = v?.kind;
  if (kind === undefined) return "null";
  switch (kind.case) {
    case undefined:
    case "nullValue":
      return "null";
    case "boolValue":
      return String(kind.value);
    case "intValue":
      return kind.value.toString();
    case "bigIntValue":
      return kind.value;
    case "floatValue":
      return floatText(kind.value);
    case "stringValue":
      return JSON.stringify(kind.value);
    case "bytesValue":
      return `bytes(${kind.value.length})`;
    case "timestampValue":
      return timestampDate(kind.value).toISOString();
    case "tensorValue":
      return `tensor ${dtypeName(kind.value.dtype)}[${kind.value.shape.join(", ")}]`;
    case "listValue":
      return joined(
        "[",
        kind.value.values.map((item) => () => fullText(item, budget)),
        "]",
        budget,
      );
    case "mapValue":
      return joined(
        "{",
        kind.value.entries.map(
          (entry) => () => `${JSON.stringify(entry.key)}: ${fullText(entry.value, budget)}`,
        ),
        "}",
        budget,
      );
  }
}

/** Items joined until the text is longer than `budget` (a huge list is not rendered whole). */
function joined(open: string, items: (() => string)[], close: string, budget: number): string {
  let text = "";
  for (const [index, item] of items.entries()) {
    if (text.length > budget) return `${open}${text}, …${close}`;
    text += (index === 0 ? "" : ", ") + item();
  }
  return `${open}${text}${close}`;
}

/** A Value as plain JSON (ints beyond 2^53 and big ints as strings, bytes as base64), for copying. */
export function valueToJson(v: Value | undefined): Json {
  const kind = v?.kind;
  if (kind === undefined) return null;
  switch (kind.case) {
    case undefined:
    case "nullValue":
      return null;
    case "boolValue":
    case "floatValue":
    case "stringValue":
    case "bigIntValue":
      return kind.value;
    case "intValue":
      return Number.isSafeInteger(Number(kind.value)) ? Number(kind.value) : kind.value.toString();
    case "bytesValue":
      return base64(kind.value);
    case "timestampValue":
      return timestampDate(kind.value).toISOString();
    case "tensorValue":
      return valueText(v);
    case "listValue":
      return kind.value.values.map(valueToJson);
    case "mapValue":
      return Object.fromEntries(kind.value.entries.map((entry) => [entry.key, valueToJson(entry.value)]));
  }
}

/** Base64 of `bytes`, a chunk at a time (spreading a large array into one call overflows the stack). */
function base64(bytes: Uint8Array): string {
  let binary = "";
  for (let start = 0; start < bytes.length; start += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(start, start + 0x8000));
  }
  return btoa(binary);
}
