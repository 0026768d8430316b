/**
 * The output step of a call: a result (or a stream's chunk) is checked against the tool's
 * output schema, then encoded as the schema says. Both failures are the tool's, not the
 * caller's: ToolExecutionError. A result that arrives encoded (`EncodedOutput`, a Python
 * worker's) was checked where it was made and is passed on as it is.
 */
import { BridgeError, type EncodingGuide, ErrorType, encodeValue, type pbValues } from "@toolbridge/core";
import type { Tool } from "./define.js";

/**
 * A result (or a stream's chunk) encoded where the tool ran, and checked there against the
 * output schema the tool publishes (a Python worker checks with the pydantic model the schema
 * came from). The host sends it unchanged: every kind in it is kept, also where no schema
 * says what it is (a float that happens to be integral inside an untyped map).
 */
export class EncodedOutput {
  constructor(readonly value: pbValues.Value) {}
}

/**
 * The value a tool produced, as its output schema parses it (unknown keys of a z.object
 * are dropped); without a schema, the value itself. `chunk` is the chunk's position in a
 * stream. Throws ToolExecutionError naming the path of the first mismatches.
 */
export function checkOutput(tool: Tool, value: unknown, chunk?: number): unknown {
  if (tool.output === undefined || value instanceof EncodedOutput) return value;
  const result = tool.output.safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues;
  const path = jsonPath(issues[0]?.path ?? []);
  const problems = issues
    .slice(0, 3)
    .map((issue) => `${jsonPath(issue.path)}: ${issue.message}`)
    .join("; ");
  const what = chunk === undefined ? "a result" : `chunk ${chunk}`;
  throw new BridgeError(
    ErrorType.ToolExecutionError,
    `tool '${tool.name}' returned ${what} that does not match its output schema: ${problems}`,
    {
      details:
        chunk === undefined
          ? { reason: "output_schema", path }
          : { reason: "output_schema", path, chunk: String(chunk) },
    },
  );
}

/** A tool's checked output as a Value, encoded by `guide` (from its output schema). */
export function encodeOutput(tool: Tool, value: unknown, guide: EncodingGuide | undefined): pbValues.Value {
  if (value instanceof EncodedOutput) return value.value;
  try {
    return encodeValue(value, guide);
  } catch (error) {
    if (error instanceof BridgeError) {
      throw new BridgeError(
        ErrorType.ToolExecutionError,
        `tool '${tool.name}' returned a value that cannot be sent: ${error.message}`,
        { details: error.details },
      );
    }
    throw error;
  }
}

/** All a stream's checked chunks as one list (a streaming tool called as a plain call). */
export function encodeChunks(tool: Tool, chunks: readonly unknown[]): pbValues.Value {
  if (!(chunks[0] instanceof EncodedOutput)) return encodeOutput(tool, chunks, tool.collectedGuide);
  const values = chunks.map((chunk) => encodeOutput(tool, chunk, tool.outputGuide));
  return { kind: { $case: "listValue", value: { values } } };
}

/** `$.items[2].price`, the form the value codec's error paths take. */
function jsonPath(path: readonly PropertyKey[]): string {
  let out = "$";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (typeof segment === "string" && /^[A-Za-z_$][\w$]*$/.test(segment)) out += `.${segment}`;
    else out += `[${JSON.stringify(String(segment))}]`;
  }
  return out;
}
