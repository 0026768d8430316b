/** The wire side of a call to a worker: arguments in, results and stream chunks out. */
import {
  BridgeError,
  type DecodeOptions,
  decodeValue,
  ErrorType,
  encodeValue,
  isErrorType,
  type NativeValue,
  type pb,
  type pbValues,
} from "@toolbridge/core";

export function encodeArgs(args: readonly unknown[]): pbValues.Value[] {
  return args.map((arg, index) => withContext(`argument ${index}`, () => encodeValue(arg)));
}

export function encodeKwargs(kwargs: Readonly<Record<string, unknown>>): Record<string, pbValues.Value> {
  const out: Record<string, pbValues.Value> = {};
  for (const [key, value] of Object.entries(kwargs)) {
    out[key] = withContext(`argument '${key}'`, () => encodeValue(value));
  }
  return out;
}

function withContext<T>(where: string, encode: () => T): T {
  try {
    return encode();
  } catch (error) {
    if (error instanceof BridgeError) {
      throw new BridgeError(error.type, `${where}: ${error.message}`, { details: error.details });
    }
    throw error;
  }
}

/** The BridgeError of an in-band failure, with the worker's type, message and details. */
export function errorFromInfo(info: pb.ErrorInfo | undefined): BridgeError {
  if (info === undefined)
    return new BridgeError(ErrorType.InternalError, "the worker reported a failure without an error");
  const type = isErrorType(info.type) ? info.type : ErrorType.InternalError;
  const details = info.stacktrace === "" ? info.details : { ...info.details, stacktrace: info.stacktrace };
  return new BridgeError(type, info.message, { details });
}

export function decodeResponse(response: pb.ToolCallResponse, options?: DecodeOptions): NativeValue {
  if (!response.success) throw errorFromInfo(response.error);
  return decodeValue(response.result, options);
}

/** A data chunk's value, or `done` for the complete chunk; an error chunk throws. */
export function decodeChunk(
  chunk: pb.ToolStreamChunk,
  options?: DecodeOptions,
): { done: false; value: NativeValue } | { done: true } {
  const content = chunk.content;
  if (content?.$case === "data") return { done: false, value: decodeValue(content.value, options) };
  if (content?.$case === "error") throw errorFromInfo(content.value);
  return { done: true };
}
