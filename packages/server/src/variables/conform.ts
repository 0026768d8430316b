/**
 * Checking a value against a variable's declaration, and normalizing it (an integer written
 * to a float variable is stored as a float). Pure functions over the wire messages, so every
 * store and every entry point (RPC, host API) applies exactly the same rules.
 */
import { BridgeError, ErrorType, pb, pbValues, type VariableType } from "@toolbridge/core";
import { compiled } from "./pattern.js";
import { DTYPE_NAMES, inferType, show } from "./value-names.js";

type Value = pbValues.Value;

/** A validated declaration; `constraints` is normalized (e.g. float choices stored as floats). */
export interface Declaration {
  readonly type: VariableType;
  readonly constraints: pb.VariableConstraints;
}

/** The constraints of a declaration that sets none. */
export const NO_CONSTRAINTS = pb.VariableConstraints.fromPartial({});

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
  const where = at === "" ? "" : ` at ${at}`;
  const out = checkType(d, value, at, where);
  const { choices } = d.constraints;
  if (choices.length > 0 && !choices.some((choice) => sameValue(choice, out))) {
    throw new Violation("choices", `${show(value)}${where} is not one of the choices`);
  }
  return out;
}

/** `value` checked against the declared type and the constraints of that type (not choices), normalized. */
function checkType(d: Declaration, value: Value, at: string, where: string): Value {
  const c = d.constraints;
  const kind = value.kind;
  switch (d.type) {
    case "boolean":
      if (kind?.$case !== "boolValue") wrongType(d, value, where);
      break;
    case "integer":
      return checkInteger(d, value, where);
    case "float":
      return checkFloat(d, value, where);
    case "string":
      return checkString(d, value, where);
    case "bytes":
      if (kind?.$case !== "bytesValue") return wrongType(d, value, where);
      checkLength(c, kind.value.length, "bytes", value, where);
      break;
    case "timestamp":
      if (kind?.$case !== "timestampValue") wrongType(d, value, where);
      break;
    case "list":
      return checkList(d, value, at, where);
    case "map":
      if (kind?.$case !== "mapValue") return wrongType(d, value, where);
      checkLength(c, kind.value.entries.length, "entries", value, where);
      break;
    case "embedding":
      return checkEmbedding(c, value, where);
    case "tensor":
      return checkTensor(d, value, where);
  }
  // "any" and "choice" take any value (a choice's values are checked by the caller).
  return value;
}

function wrongType(d: Declaration, value: Value, where: string): never {
  throw new Violation(
    "type",
    `${show(value)}${where} is ${article(inferType(value))}, not ${article(d.type)}`,
  );
}

function checkInteger(d: Declaration, value: Value, where: string): Value {
  const c = d.constraints;
  const kind = value.kind;
  if (kind?.$case !== "intValue" && kind?.$case !== "bigIntValue") return wrongType(d, value, where);
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
  return value;
}

/** A float, or an integer with an exact float form (returned as a float), within min and max. */
function checkFloat(d: Declaration, value: Value, where: string): Value {
  const c = d.constraints;
  const kind = value.kind;
  let x: number;
  let out = value;
  if (kind?.$case === "floatValue") {
    x = kind.value;
  } else if (kind?.$case === "intValue") {
    if (kind.value > 2n ** 53n || kind.value < -(2n ** 53n)) {
      throw new Violation("type", `the integer ${show(value)}${where} has no exact float form`);
    }
    x = Number(kind.value);
    out = float(x);
  } else {
    return wrongType(d, value, where);
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
  return out;
}

function checkString(d: Declaration, value: Value, where: string): Value {
  const c = d.constraints;
  const kind = value.kind;
  if (kind?.$case !== "stringValue") return wrongType(d, value, where);
  checkLength(c, codePoints(kind.value), "characters", value, where);
  if (c.pattern !== "" && !compiled(c.pattern).test(kind.value)) {
    throw new Violation(
      "pattern",
      `${show(value)}${where} does not match the pattern ${JSON.stringify(c.pattern)}`,
    );
  }
  return value;
}

/** A list within its length bounds, each item checked against the item type (normalized items in a new list). */
function checkList(d: Declaration, value: Value, at: string, where: string): Value {
  const c = d.constraints;
  const kind = value.kind;
  if (kind?.$case !== "listValue") return wrongType(d, value, where);
  checkLength(c, kind.value.values.length, "items", value, where);
  if (c.itemType === "" || c.itemType === "any") return value;
  const item: Declaration = { type: c.itemType as VariableType, constraints: NO_CONSTRAINTS };
  let changed = false;
  const values = kind.value.values.map((v, i) => {
    const checked = check(item, v, `${at}[${i}]`);
    changed ||= checked !== v;
    return checked;
  });
  return changed ? { kind: { $case: "listValue", value: { values } } } : value;
}

function checkTensor(d: Declaration, value: Value, where: string): Value {
  const c = d.constraints;
  const kind = value.kind;
  if (kind?.$case !== "tensorValue") return wrongType(d, value, where);
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
  return value;
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
