/**
 * Declared variable types: checking a declaration from the wire (its type, which constraints
 * apply to it, their values). conform.ts checks values against a declaration.
 */
import { BridgeError, ErrorType, isVariableType, pb, pbValues, type VariableType } from "@toolbridge/core";
import { conform, type Declaration, NO_CONSTRAINTS } from "./conform.js";
import { patternProblem } from "./pattern.js";
import { DTYPE_NAMES } from "./value-names.js";

export const MAX_CHOICES = 1000;

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
  const c = constraints ?? NO_CONSTRAINTS;
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
  const bare: Declaration = { type, constraints: NO_CONSTRAINTS };
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
