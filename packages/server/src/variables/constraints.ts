/**
 * Declared variable types: checking a declaration, and checking (and normalizing) a
 * value against it. Pure functions over the wire messages, so every store and every
 * entry point (RPC, host API) applies exactly the same rules.
 */
import { BridgeError, ErrorType, isVariableType, pb, pbValues, type VariableType } from "@toolbridge/core";
import { compiled, patternProblem } from "./pattern.js";

type Value = pbValues.Value;
type Kind = NonNullable<Value["kind"]>["$case"];

/** A validated declaration; `constraints` is normalized (e.g. float choices stored as floats). */
export interface Declaration {
  readonly type: VariableType;
  readonly constraints: pb.VariableConstraints;
}

export const MAX_CHOICES = 1000;

const EMPTY = pb.VariableConstraints.fromPartial({});

type ConstraintName =
  | "min"
  | "max"
  | "min_length"
  | "max_length"
  | "pattern"
  | "choices"
  | "shape"
  | "dimensions"
  | "item_type"
  | "dtype";

/** Which constraints each type takes; any other set constraint makes the declaration invalid. */
const APPLICABLE: Record<VariableType, readonly ConstraintName[]> = {
  any: ["choices"],
  boolean: [],
  integer: ["min", "max", "choices"],
  float: ["min", "max", "choices"],
  string: ["min_length", "max_length", "pattern", "choices"],
  bytes: ["min_length", "max_length"],
  timestamp: [],
  choice: ["choices"],
  list: ["min_length", "max_length", "item_type"],
  map: ["min_length", "max_length"],
  embedding: ["dimensions"],
  tensor: ["shape", "dtype"],
};

function setConstraints(c: pb.VariableConstraints): ConstraintName[] {
  const set: ConstraintName[] = [];
  if (c.min !== undefined) set.push("min");
  if (c.max !== undefined) set.push("max");
  if (c.minLength !== undefined) set.push("min_length");
  if (c.maxLength !== undefined) set.push("max_length");
  if (c.pattern !== "") set.push("pattern");
  if (c.choices.length > 0) set.push("choices");
  if (c.shape.length > 0) set.push("shape");
  if (c.dimensions !== 0) set.push("dimensions");
  if (c.itemType !== "") set.push("item_type");
  if (c.dtype !== pbValues.DType.DTYPE_UNSPECIFIED) set.push("dtype");
  return set;
}

// ---------------------------------------------------------------------------
// Declarations

function badDeclaration(name: string, field: string, message: string): BridgeError {
  return new BridgeError(ErrorType.ValidationError, `cannot declare variable '${name}': ${message}`, {
    details: { field: `metadata.${field}`, variable: name },
  });
}

/** Validates a declaration from the wire; throws ValidationError naming the bad field. */
export function parseDeclaration(
  name: string,
  type: string,
  constraints: pb.VariableConstraints | undefined,
): Declaration {
  if (!isVariableType(type)) {
    throw badDeclaration(
      name,
      "type",
      `unknown type '${type.slice(0, 100)}'; declare one of: ${Object.keys(APPLICABLE).join(", ")}`,
    );
  }
  const c = constraints ?? EMPTY;
  const allowed = APPLICABLE[type];
  for (const constraint of setConstraints(c)) {
    if (!allowed.includes(constraint)) {
      throw badDeclaration(
        name,
        `constraints.${constraint}`,
        `'${constraint}' does not apply to type ${type}` +
          (allowed.length === 0 ? " (it takes no constraints)" : `; it takes ${allowed.join(", ")}`),
      );
    }
  }
  if (c.min !== undefined && Number.isNaN(c.min)) throw badDeclaration(name, "constraints.min", "min is NaN");
  if (c.max !== undefined && Number.isNaN(c.max)) throw badDeclaration(name, "constraints.max", "max is NaN");
  if (c.min !== undefined && c.max !== undefined && c.min > c.max) {
    throw badDeclaration(name, "constraints.min", `min ${c.min} is greater than max ${c.max}`);
  }
  if (c.minLength !== undefined && c.maxLength !== undefined && c.minLength > c.maxLength) {
    throw badDeclaration(
      name,
      "constraints.min_length",
      `min_length ${c.minLength} is greater than max_length ${c.maxLength}`,
    );
  }
  if (c.pattern !== "") {
    const problem = patternProblem(c.pattern);
    if (problem !== undefined) throw badDeclaration(name, "constraints.pattern", problem);
  }
  if (c.itemType !== "" && (!isVariableType(c.itemType) || c.itemType === "choice")) {
    throw badDeclaration(
      name,
      "constraints.item_type",
      `item_type '${c.itemType.slice(0, 100)}' is not a type a list item can have; use one of: ` +
        Object.keys(APPLICABLE)
          .filter((t) => t !== "choice")
          .join(", "),
    );
  }
  if (c.dtype !== pbValues.DType.DTYPE_UNSPECIFIED && !(c.dtype in DTYPE_NAMES)) {
    throw badDeclaration(name, "constraints.dtype", `unknown dtype code ${c.dtype}`);
  }
  if (type === "choice" && c.choices.length === 0) {
    throw badDeclaration(name, "constraints.choices", "a choice variable needs a non-empty list of choices");
  }
  if (c.choices.length > MAX_CHOICES) {
    throw badDeclaration(name, "constraints.choices", `more than ${MAX_CHOICES} choices`);
  }
  // Choices must be values of the type itself; they are stored normalized (2 -> 2.0 for
  // float) so that comparing a normalized value with them is exact.
  const bare: Declaration = { type, constraints: EMPTY };
  const choices = c.choices.map((choice, index) => {
    try {
      return conform(name, bare, choice);
    } catch (error) {
      if (error instanceof BridgeError) {
        throw badDeclaration(name, "constraints.choices", `choice ${index}: ${error.message}`);
      }
      throw error;
    }
  });
  return { type, constraints: { ...c, choices } };
}

/** True when two declarations are the same type with the same constraints. */
export function sameDeclaration(a: Declaration, b: Declaration): boolean {
  if (a.type !== b.type) return false;
  return Buffer.from(pb.VariableConstraints.encode(a.constraints).finish()).equals(
    pb.VariableConstraints.encode(b.constraints).finish(),
  );
}

/** "float (min 0, max 2)": a declaration as messages show it. */
export function describeDeclaration(d: Declaration): string {
  const c = d.constraints;
  const parts: string[] = [];
  if (c.min !== undefined) parts.push(`min ${c.min}`);
  if (c.max !== undefined) parts.push(`max ${c.max}`);
  if (c.minLength !== undefined) parts.push(`min_length ${c.minLength}`);
  if (c.maxLength !== undefined) parts.push(`max_length ${c.maxLength}`);
  if (c.pattern !== "") parts.push(`pattern ${JSON.stringify(c.pattern.slice(0, 60))}`);
  if (c.choices.length > 0) {
    const shown = c.choices.slice(0, 8).map(show).join(", ");
    parts.push(`choices [${shown}${c.choices.length > 8 ? ", ..." : ""}]`);
  }
  if (c.shape.length > 0) parts.push(`shape [${c.shape.join(", ")}]`);
  if (c.dimensions !== 0) parts.push(`dimensions ${c.dimensions}`);
  if (c.itemType !== "") parts.push(`item_type ${c.itemType}`);
  if (c.dtype !== pbValues.DType.DTYPE_UNSPECIFIED) parts.push(`dtype ${DTYPE_NAMES[c.dtype] ?? c.dtype}`);
  return parts.length === 0 ? d.type : `${d.type} (${parts.join(", ")})`;
}

// ---------------------------------------------------------------------------
// Values

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

const DTYPE_NAMES: Partial<Record<number, string>> = {
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

class Violation extends Error {
  constructor(
    readonly constraint: string,
    message: string,
  ) {
    super(message);
  }
}

const float = (value: number): Value => ({ kind: { $case: "floatValue", value } });

/**
 * Checks `value` against a declaration and returns it normalized: an integer written to
 * a float variable (or to a float item/embedding) is stored as a float, so readers in
 * every language get the declared type. Throws ConstraintViolation naming the rule.
 */
export function conform(name: string, declaration: Declaration, value: Value): Value {
  try {
    return check(declaration, value, "");
  } catch (error) {
    if (error instanceof Violation) {
      throw new BridgeError(
        ErrorType.ConstraintViolation,
        `variable '${name}' is declared ${describeDeclaration(declaration)}: ${error.message}`,
        { details: { variable: name, constraint: error.constraint, type: declaration.type } },
      );
    }
    throw error;
  }
}

function check(d: Declaration, value: Value, at: string): Value {
  const c = d.constraints;
  const kind = value.kind;
  const where = at === "" ? "" : ` at ${at}`;
  const wrongType = (): never => {
    throw new Violation(
      "type",
      `${show(value)}${where} is ${article(inferType(value))}, not ${article(d.type)}`,
    );
  };
  let out = value;
  switch (d.type) {
    case "any":
      break;
    case "boolean":
      if (kind?.$case !== "boolValue") wrongType();
      break;
    case "integer": {
      if (kind?.$case !== "intValue" && kind?.$case !== "bigIntValue") return wrongType();
      const n = BigInt(kind.value);
      if (
        c.min !== undefined &&
        !(c.min === Number.NEGATIVE_INFINITY || (Number.isFinite(c.min) && n >= BigInt(Math.ceil(c.min))))
      ) {
        throw new Violation("min", `${show(value)}${where} is below the minimum ${c.min}`);
      }
      if (
        c.max !== undefined &&
        !(c.max === Number.POSITIVE_INFINITY || (Number.isFinite(c.max) && n <= BigInt(Math.floor(c.max))))
      ) {
        throw new Violation("max", `${show(value)}${where} is above the maximum ${c.max}`);
      }
      break;
    }
    case "float": {
      let x: number;
      if (kind?.$case === "floatValue") {
        x = kind.value;
      } else if (kind?.$case === "intValue") {
        if (kind.value > 2n ** 53n || kind.value < -(2n ** 53n)) {
          throw new Violation("type", `the integer ${show(value)}${where} has no exact float form`);
        }
        x = Number(kind.value);
        out = float(x);
      } else {
        return wrongType();
      }
      if (c.min !== undefined && !(x >= c.min)) {
        throw new Violation(
          "min",
          `${x}${where} is ${Number.isNaN(x) ? "NaN, not" : "below"} the minimum ${c.min}`,
        );
      }
      if (c.max !== undefined && !(x <= c.max)) {
        throw new Violation(
          "max",
          `${x}${where} is ${Number.isNaN(x) ? "NaN, not" : "above"} the maximum ${c.max}`,
        );
      }
      break;
    }
    case "string": {
      if (kind?.$case !== "stringValue") return wrongType();
      checkLength(c, codePoints(kind.value), "characters", value, where);
      if (c.pattern !== "" && !compiled(c.pattern).test(kind.value)) {
        throw new Violation(
          "pattern",
          `${show(value)}${where} does not match the pattern ${JSON.stringify(c.pattern)}`,
        );
      }
      break;
    }
    case "bytes":
      if (kind?.$case !== "bytesValue") return wrongType();
      checkLength(c, kind.value.length, "bytes", value, where);
      break;
    case "timestamp":
      if (kind?.$case !== "timestampValue") wrongType();
      break;
    case "choice":
      break;
    case "list": {
      if (kind?.$case !== "listValue") return wrongType();
      checkLength(c, kind.value.values.length, "items", value, where);
      if (c.itemType !== "" && c.itemType !== "any") {
        const item: Declaration = { type: c.itemType as VariableType, constraints: EMPTY };
        let changed = false;
        const values = kind.value.values.map((v, i) => {
          const checked = check(item, v, `${at}[${i}]`);
          changed ||= checked !== v;
          return checked;
        });
        if (changed) out = { kind: { $case: "listValue", value: { values } } };
      }
      break;
    }
    case "map":
      if (kind?.$case !== "mapValue") return wrongType();
      checkLength(c, kind.value.entries.length, "entries", value, where);
      break;
    case "embedding":
      out = checkEmbedding(c, value, where);
      break;
    case "tensor": {
      if (kind?.$case !== "tensorValue") return wrongType();
      const t = kind.value;
      if (c.dtype !== pbValues.DType.DTYPE_UNSPECIFIED && t.dtype !== c.dtype) {
        throw new Violation("dtype", `${show(value)}${where} does not have dtype ${DTYPE_NAMES[c.dtype]}`);
      }
      if (
        c.shape.length > 0 &&
        (t.shape.length !== c.shape.length || t.shape.some((dim, i) => dim !== c.shape[i]))
      ) {
        throw new Violation("shape", `${show(value)}${where} does not have shape [${c.shape.join(", ")}]`);
      }
      break;
    }
  }
  if (c.choices.length > 0 && !c.choices.some((choice) => sameValue(choice, out))) {
    throw new Violation("choices", `${show(value)}${where} is not one of the choices`);
  }
  return out;
}

function checkEmbedding(c: pb.VariableConstraints, value: Value, where: string): Value {
  const kind = value.kind;
  let length: number;
  let out = value;
  if (kind?.$case === "listValue") {
    const values = kind.value.values.map((item, i) => {
      const k = item.kind;
      let x: number;
      if (k?.$case === "floatValue") x = k.value;
      else if (k?.$case === "intValue" && k.value <= 2n ** 53n && k.value >= -(2n ** 53n))
        x = Number(k.value);
      else throw new Violation("type", `item ${i}${where} of an embedding is ${show(item)}, not a number`);
      if (!Number.isFinite(x)) {
        throw new Violation(
          "type",
          `item ${i}${where} of an embedding is ${x}; embeddings hold finite numbers`,
        );
      }
      return k.$case === "floatValue" ? item : float(x);
    });
    out = { kind: { $case: "listValue", value: { values } } };
    length = values.length;
  } else if (kind?.$case === "tensorValue" && kind.value.shape.length === 1) {
    if (kind.value.dtype === pbValues.DType.DTYPE_BOOL) {
      throw new Violation("type", `${show(value)}${where} is not numeric`);
    }
    length = kind.value.shape[0] ?? 0;
  } else {
    throw new Violation(
      "type",
      `${show(value)}${where} is not an embedding (a list of numbers or a 1-d tensor)`,
    );
  }
  if (c.dimensions !== 0 && length !== c.dimensions) {
    throw new Violation(
      "dimensions",
      `an embedding of ${length} dimensions${where} is not of ${c.dimensions}`,
    );
  }
  return out;
}

function checkLength(
  c: pb.VariableConstraints,
  length: number,
  unit: string,
  value: Value,
  where: string,
): void {
  if (c.minLength !== undefined && length < c.minLength) {
    throw new Violation(
      "min_length",
      `${show(value)}${where} has ${length} ${unit}, fewer than min_length ${c.minLength}`,
    );
  }
  if (c.maxLength !== undefined && length > c.maxLength) {
    throw new Violation(
      "max_length",
      `${show(value)}${where} has ${length} ${unit}, more than max_length ${c.maxLength}`,
    );
  }
}

/** String length as Python's len() counts it, so both languages agree on min/max_length. */
function codePoints(text: string): number {
  let n = text.length;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) n--;
  }
  return n;
}

/** Exact equality of two values: same kind and the same encoding (so 2 and 2.0 differ). */
function sameValue(a: Value, b: Value): boolean {
  return Buffer.from(pbValues.Value.encode(a).finish()).equals(pbValues.Value.encode(b).finish());
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}
