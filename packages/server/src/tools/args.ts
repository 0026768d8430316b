import { BridgeError, decodeValue, ErrorType, type NativeValue, type pbValues } from "@toolbridge/core";
import type { Tool } from "./define.js";

/**
 * Decodes a call's positional and keyword arguments, binds positional ones to the
 * tool's parameters in schema order, and validates the whole against the schema.
 * Returns the parsed arguments (with defaults applied) or throws
 * ValidationError / InvalidValue naming the argument.
 */
export function bindArguments(
  tool: Tool,
  args: readonly pbValues.Value[],
  kwargs: Readonly<Record<string, pbValues.Value>>,
): Record<string, unknown> {
  const names = tool.parameterNames;
  if (args.length > names.length) {
    throw new BridgeError(
      ErrorType.ValidationError,
      `tool '${tool.name}' takes ${names.length} positional argument(s) (${names.join(", ") || "none"}) ` +
        `but ${args.length} were given`,
      { details: { field: "" } },
    );
  }
  const bound: Record<string, NativeValue> = {};
  for (let i = 0; i < args.length; i++) {
    const name = names[i] as string;
    bound[name] = decodeArgument(tool, name, args[i]);
  }
  for (const name of Object.keys(kwargs)) {
    if (Object.hasOwn(bound, name)) {
      throw validation(tool, name, `got multiple values for argument '${name}'`);
    }
    if (!tool.acceptsExtraArguments && !names.includes(name)) {
      throw validation(
        tool,
        name,
        `unexpected argument '${name}'; parameters are: ${names.join(", ") || "none"}`,
      );
    }
    bound[name] = decodeArgument(tool, name, kwargs[name]);
  }
  const result = tool.parameters.safeParse(bound);
  if (result.success) return result.data as Record<string, unknown>;
  const issue = result.error.issues[0];
  const field = issue?.path.map(String).join(".") ?? "";
  const problems = result.error.issues
    .slice(0, 5)
    .map((i) => `'${i.path.map(String).join(".") || "(arguments)"}': ${i.message}`)
    .join("; ");
  throw validation(tool, field, problems);
}

function decodeArgument(tool: Tool, name: string, value: pbValues.Value | undefined): NativeValue {
  try {
    return decodeValue(value);
  } catch (error) {
    if (error instanceof BridgeError) {
      throw new BridgeError(error.type, `argument '${name}' of tool '${tool.name}': ${error.message}`, {
        details: { ...error.details, field: name },
      });
    }
    throw error;
  }
}

function validation(tool: Tool, field: string, problem: string): BridgeError {
  return new BridgeError(ErrorType.ValidationError, `invalid arguments for tool '${tool.name}': ${problem}`, {
    details: { field },
  });
}
