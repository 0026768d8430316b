/**
 * A tool call's arguments as `Value` messages, as every caller sends them (the client, the
 * host calling its workers). A value that cannot be encoded fails with the codec's error,
 * its message naming the argument.
 */
import { BridgeError } from "./errors.js";
import type { Value } from "./gen/toolbridge/v1/values.js";
import { encodeValue } from "./values.js";

/** Positional arguments; a failure names the argument's index. */
export function encodeArgs(args: readonly unknown[]): Value[] {
  const out: Value[] = new Array(args.length);
  for (let index = 0; index < args.length; index++) {
    try {
      out[index] = encodeValue(args[index]);
    } catch (error) {
      throw inArgument(error, `argument ${index}`);
    }
  }
  return out;
}

/** Keyword arguments; a failure names the argument. */
export function encodeKwargs(kwargs: Readonly<Record<string, unknown>>): Record<string, Value> {
  const out: Record<string, Value> = {};
  for (const key of Object.keys(kwargs)) {
    try {
      out[key] = encodeValue(kwargs[key]);
    } catch (error) {
      throw inArgument(error, `argument '${key}'`);
    }
  }
  return out;
}

function inArgument(error: unknown, where: string): unknown {
  if (!(error instanceof BridgeError)) return error;
  return new BridgeError(error.type, `${where}: ${error.message}`, { details: error.details });
}
